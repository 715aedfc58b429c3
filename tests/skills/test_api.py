"""The skill API (parameters inferred from the function, phrases and slash commands a skill declares),
/api/skills, chat shortcuts (/time, "what time is it?") and voice phrases, all driven by the skills."""

from __future__ import annotations

import enum
import importlib.metadata
import inspect
import json
import re
from typing import Annotated, Any, Literal

import annotated_types
import pytest
from fastapi.testclient import TestClient
from pydantic import Field

from assistant.config import Settings
from assistant.core.errors import AssistantError, BadRequest, NotFound
from assistant.services import Services, build_services
from assistant.skillkit.api import (
    FeedReader,
    MemoryWriter,
    NotificationSink,
    SkillContext,
    SkillResult,
    skill,
)
from assistant.skillkit.docstrings import docstring_params
from assistant.skillkit.registry import SkillParts, SkillRegistry, SkillRunner, parse_args, specs_in
from assistant.skillkit.shortcuts import SkillShortcuts, request_text
from assistant.voice.phrases import skill_for, skill_phrases
from tests.fakes import FakeLLM, FixedClock, RecordingNotifier
from tests.skill_fakes import FakeFeeds, FakeMemory, entry


@skill("echo", "Echo the arguments")
def echo(ctx: SkillContext, n: Annotated[int, "times"] = 1, word: str = "hi") -> SkillResult:
    """Not this text: the decorator's description wins."""
    return SkillResult(" ".join([word] * n), data={"trigger": ctx.trigger, "args": dict(ctx.args)})


@skill("boom")
def boom(ctx: SkillContext) -> SkillResult:
    """Always fails."""
    raise ZeroDivisionError("division by zero")


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


@skill(phrases=["paint the {wall} wall", "paint the {wall} wall {finish}"])
def paint(
    ctx: SkillContext,
    wall: str,
    colour: Colour = Colour.RED,
    coats: Annotated[int, Field(ge=1, le=3, description="how many coats")] = 1,
    finish: Literal["matt", "gloss"] = "matt",
    ratio: Annotated[float, annotated_types.Interval(ge=0, le=1)] = 0.5,
    size: Literal[1, 2, 5] = 1,
    note: Annotated[str | None, "written on the tin"] = None,
    rooms: Annotated[int, Field(gt=0, lt=10)] | None = None,
) -> SkillResult:
    """Paint a wall
    of the house.

    Longer text that is not the description.

    Args:
        wall: which wall
        colour: the colour of
            the paint
        coats: not this one (Field's description wins)
    """
    return SkillResult(f"{wall} {colour.value} x{coats} {finish} {ratio} {size} {note} {rooms}")


def test_decorator_marks_without_registering_globally() -> None:
    [spec] = specs_in(echo)
    assert spec.name == "echo" and spec.func is echo and spec.params["n"].annotation is int
    assert spec.description == "Echo the arguments"
    assert specs_in(boom)[0].description == "Always fails."  # the docstring's summary
    with pytest.raises(ValueError, match="lowercase"):
        skill("Bad Name", "x")


def test_parameters_are_inferred_from_the_signature() -> None:
    [spec] = specs_in(paint)
    assert spec.name == "paint" and spec.description == "Paint a wall of the house."
    described = spec.describe()
    assert described["params"] == {
        "wall": {"type": "str", "default": None, "description": "which wall", "required": True},
        "colour": {"type": "str", "default": "red", "description": "the colour of the paint",
                   "required": False, "choices": ["red", "green"]},
        "coats": {"type": "int", "default": 1, "description": "how many coats", "required": False,
                  "min": 1, "max": 3},
        "finish": {"type": "str", "default": "matt", "description": "", "required": False,
                   "choices": ["matt", "gloss"]},
        "ratio": {"type": "float", "default": 0.5, "description": "", "required": False, "min": 0, "max": 1},
        "size": {"type": "int", "default": 1, "description": "", "required": False, "choices": [1, 2, 5]},
        "note": {"type": "str", "default": None, "description": "written on the tin", "required": False},
        "rooms": {"type": "int", "default": None, "description": "", "required": False, "min": 1, "max": 9},
    }  # fmt: skip
    assert described["slash"] == "/paint" and described["origin"] == "builtin"
    assert described["phrases"] == ["paint the {wall} wall", "paint the {wall} wall {finish}"]
    assert described["schedule"] is None
    assert json.loads(json.dumps(described)) == described  # served as JSON as it is


def test_arguments_are_converted_and_checked() -> None:
    [spec] = specs_in(echo)
    assert parse_args(spec, {"n": "3"}) == {"n": 3, "word": "hi"}
    with pytest.raises(BadRequest, match="argument n: Input should be a valid integer"):
        parse_args(spec, {"n": "many"})
    with pytest.raises(BadRequest, match=r"has no parameter 'colour' \(parameters: n, word\)"):
        parse_args(spec, {"colour": "red"})

    [spec] = specs_in(paint)
    assert parse_args(spec, {"wall": "north"}) == {
        "wall": "north", "colour": Colour.RED, "coats": 1, "finish": "matt", "ratio": 0.5, "size": 1,
        "note": None, "rooms": None,
    }  # fmt: skip
    got = parse_args(spec, {"wall": "east", "colour": "green", "coats": "3", "finish": "gloss",
                            "ratio": "0.25", "size": "5", "note": "x", "rooms": "9"})  # fmt: skip
    assert got == {"wall": "east", "colour": Colour.GREEN, "coats": 3, "finish": "gloss", "ratio": 0.25,
                   "size": 5, "note": "x", "rooms": 9}  # fmt: skip
    for raw, message in [
        ({}, "skill 'paint' argument wall: missing (it has no default)"),
        ({"wall": "n", "coats": "4"}, "argument coats: Input should be less than or equal to 3"),
        ({"wall": "n", "coats": 0}, "argument coats: Input should be greater than or equal to 1"),
        ({"wall": "n", "finish": "satin"}, "argument finish: Input should be 'matt' or 'gloss'"),
        ({"wall": "n", "colour": "blue"}, "argument colour: Input should be 'red' or 'green'"),
        ({"wall": "n", "size": "3"}, "argument size: Input should be 1, 2 or 5"),
        ({"wall": "n", "ratio": 2}, "argument ratio: Input should be less than or equal to 1"),
        ({"wall": "n", "rooms": 10}, "argument rooms: Input should be less than 10"),
    ]:
        with pytest.raises(BadRequest) as err:
            parse_args(spec, raw)
        assert message in err.value.message and err.value.code == "bad_skill_args" and err.value.status == 400


def test_the_function_gets_keyword_arguments() -> None:
    from assistant.config import load_settings
    from tests.fakes import FixedClock

    parts = SkillParts(load_settings(None), FixedClock(), worker=None)  # the least a runner needs
    runner = SkillRunner(SkillRegistry([specs_in(paint)[0], specs_in(echo)[0]]), parts)
    painted = runner.run("paint", {"wall": "north", "colour": "green"})
    assert painted.text == "north green x1 matt 0.5 1 None None"
    result = runner.run("echo", {"n": "2"})
    assert result.data["args"] == {"n": 2, "word": "hi"}  # ctx.args holds the same checked arguments


def test_a_skill_without_a_context_and_a_type_defined_later() -> None:
    @skill("roll")
    def roll(sides: Annotated[int, Field(ge=2)] = 6, die: Die = None) -> SkillResult:  # noqa: F821
        """Roll a die."""
        return SkillResult(f"{sides} {die}")

    spec = specs_in(roll)[0]
    with pytest.raises(NameError):
        spec.check()  # `Die` is not defined yet: looked up on first use, not at decoration
    globals()["Die"] = Literal["d6", "d20"]
    try:
        spec.check()
        assert spec.signature.context is None
        assert spec.describe()["params"]["die"]["choices"] == ["d6", "d20"]
        assert spec.call(None, parse_args(spec, {"die": "d20"})).text == "6 d20"  # type: ignore[arg-type]
    finally:
        del globals()["Die"]


def test_mistakes_are_reported_when_the_skill_is_defined() -> None:
    def bad(**kw: Any) -> SkillResult: ...

    def positional(ctx: SkillContext, n: int, /) -> SkillResult: ...

    def private(ctx: SkillContext, _n: int = 1) -> SkillResult: ...

    def field_default(ctx: SkillContext, n: int = Field(3)) -> SkillResult: ...  # noqa: B008

    def two(a: SkillContext, b: SkillContext) -> SkillResult: ...

    for func, message in [
        (bad, r"\*kw cannot be a skill parameter"),
        (positional, "positional-only"),
        (private, "may not start with '_'"),
        (field_default, r"Annotated\[type, Field\(...\)\] = default"),
        (two, "more than one SkillContext"),
    ]:
        with pytest.raises(TypeError, match=message):
            skill("x")(func)

    def weather(ctx: SkillContext, city: str = "") -> SkillResult: ...

    with pytest.raises(ValueError, match="captures 'place', which is not a parameter"):
        skill("x", phrases=["weather in {place}"])(weather)
    with pytest.raises(Exception, match="redefinition of group name"):
        skill("x", phrases=["from {city} to {city}"])
    with pytest.raises(TypeError, match="a list of phrases"):
        skill("x", phrases="what time is it")
    with pytest.raises(ValueError, match="slash"):
        skill("x", slash="/x")
    registry = SkillRegistry()
    spec = specs_in(paint)[0]
    import dataclasses

    registry.add(dataclasses.replace(spec, name="paint2", slash="", phrases=("x {nope}",)))
    assert registry.names() == [] and "captures 'nope'" in registry.errors[0]  # a plugin's mistake: listed


def test_docstring_parameter_sections() -> None:
    google = inspect.cleandoc(
        """Summary.

        Args:
            city (str): the city
                in question
            days: how many
                days ahead

        Returns:
            days: not a parameter
        """
    )
    assert docstring_params(google) == {"city": "the city in question", "days": "how many days ahead"}
    sphinx = "Summary.\n\n:param city: the city\n:param int days: how many days\n:returns: x"
    assert docstring_params(sphinx) == {"city": "the city", "days": "how many days"}


def test_phrases_capture_arguments() -> None:
    spec = specs_in(paint)[0]
    assert spec.phrase_args("Paint the north wall") == {"wall": "north"}
    assert spec.phrase_args("paint the  North   wall gloss!") == {"wall": "North", "finish": "gloss"}
    assert spec.phrase_args("paint the wall") is None
    assert spec.literal_phrases() == []


def test_builtins_are_entry_points_of_this_distribution() -> None:
    own = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="assistant.skills")
           if ep.dist is not None and ep.dist.name == "assistant"}  # fmt: skip
    assert own == {
        "calc": "skills.calc", "digest": "skills.digest", "seuss": "skills.seuss",
        "summarize": "skills.summarize_page", "time": "skills.tell_time", "when": "skills.when",
    }  # fmt: skip
    registry = SkillRegistry.discover()
    assert {"digest", "seuss", "time"} <= set(registry.names())
    assert {registry.get(n).origin for n in ("digest", "seuss", "time")} == {"builtin"}
    assert registry.errors == []
    assert SkillRegistry.discover(group="assistant.skills.test-nothing-here").names() == []


def _accepts(impl: object, proto: type, method: str) -> list[str]:
    """Problems calling ``impl.method`` the way ``proto`` says it may be called (names, kinds, defaults)."""
    want = inspect.signature(getattr(proto, method)).parameters
    have = inspect.signature(getattr(impl, method)).parameters
    problems = []
    for name, p in want.items():
        if name == "self":
            continue
        q = have.get(name)
        if q is None or q.kind != p.kind or q.default != p.default:
            problems.append(f"{type(impl).__name__}.{method}: {p} vs {q}")
    for name, q in have.items():
        optional = q.default is not inspect.Parameter.empty or q.kind in (q.VAR_POSITIONAL, q.VAR_KEYWORD)
        if name not in want and not optional:
            problems.append(f"{type(impl).__name__}.{method}: extra required {q}")
    return problems


def test_real_services_and_fakes_fit_the_protocols(services: Services, tmp_path: Any) -> None:
    from assistant.feeds.service import FeedService
    from assistant.notify.service import Notifier
    from memory.service import MemoryService

    checks = [
        (FeedService, FeedReader, ("latest_entries", "unreported_entries", "mark_reported")),
        (FakeFeeds, FeedReader, ("latest_entries", "unreported_entries", "mark_reported")),
        (Notifier, NotificationSink, ("notify",)),
        (RecordingNotifier, NotificationSink, ("notify",)),
        (MemoryService, MemoryWriter, ("add",)),
        (FakeMemory, MemoryWriter, ("add",)),
    ]
    problems = [p for impl, proto, methods in checks for m in methods for p in _accepts(impl, proto, m)]
    assert problems == []
    ctx = services.skills.context({})  # type: ignore[union-attr]
    assert ctx.settings is services.settings and ctx.clock is services.clock


@pytest.fixture
def services(settings: Settings, clock: FixedClock, fake_llm: FakeLLM) -> Services:
    """The daemon with the installed skills plus echo and boom, and fake feeds."""
    registry = SkillRegistry.discover()
    registry.add(specs_in(echo)[0])
    registry.add(specs_in(boom)[0])
    feeds = FakeFeeds([entry(1, "Library opens for cats")])
    return build_services(settings, clock=clock, llm=fake_llm, feeds=feeds, skill_registry=registry)


@pytest.fixture
def runner(services: Services) -> SkillRunner:
    assert services.skills is not None
    return services.skills


def test_runner_errors(runner: SkillRunner) -> None:
    assert runner.run("echo", {"n": 2, "word": "yo"}).text == "yo yo"
    with pytest.raises(NotFound, match="no skill named 'nope'"):
        runner.run("nope")
    with pytest.raises(AssistantError, match="skill 'boom' failed: division by zero") as err:
        runner.run("boom")
    assert err.value.status == 500 and err.value.code == "skill_failed"


def test_skills_routes(client: TestClient, runner: SkillRunner) -> None:
    listed = client.get("/api/skills").json()
    assert [s["name"] for s in listed["data"]] == ["boom", "calc", "digest", "echo", "eli5", "seuss", "summarize", "time", "when"]
    assert listed["errors"] == []
    r = client.post("/api/skills/echo/run", json={"args": {"n": "2"}})
    assert r.status_code == 200 and r.json()["text"] == "hi hi" and r.json()["data"]["trigger"] == "api"
    time = next(s for s in listed["data"] if s["name"] == "time")
    assert time["slash"] == "/time" and "what time is it" in time["phrases"]
    assert time["params"]["tz"] == {"type": "str", "default": None, "required": False,
                                    "description": "IANA time zone (default: the schedule's or the configured zone)"}  # fmt: skip
    assert client.post("/api/skills/echo/run").json()["text"] == "hi"  # no body: defaults
    r = client.post("/api/skills/time/run", json={"args": {"phrase": False}, "timezone": "Asia/Kolkata"})
    assert r.json()["text"].startswith("It's 5:30 PM (17:30) on Thursday")
    for path, body, status, message in [
        ("/api/skills/nope/run", {}, 404, "no skill named 'nope'"),
        ("/api/skills/echo/run", {"args": {"n": "x"}}, 400, "argument n"),
        ("/api/skills/echo/run", {"args": {}, "other": 1}, 400, "other"),
        ("/api/skills/boom/run", {}, 500, "skill 'boom' failed"),
        ("/api/skills/time/run", {"timezone": "Moon/Base"}, 400, "unknown timezone"),
    ]:
        r = client.post(path, json=body)
        assert r.status_code == status and message in r.json()["error"]["message"], r.text


def chat(client: TestClient, text: str, **extra: Any) -> str:
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": text}], **extra})
    assert r.status_code == 200, r.text
    if extra.get("stream"):
        parts = []
        for line in r.text.splitlines():
            if line.startswith("data: ") and line != "data: [DONE]":
                chunk = json.loads(line[6:])
                parts.append(chunk["choices"][0]["delta"].get("content") or "")
        return "".join(parts)
    return r.json()["choices"][0]["message"]["content"]


TIME_TEXT = "It's 12:00 PM (12:00) on Thursday, 15 January 2026, time zone UTC."


@pytest.mark.parametrize(
    "question",
    ["what time is it?", "What's the time?", "what time is it now", "Hey, what time is it right now?",
     "Could you tell me the time please?", "do you know what time it is?", "/time", "  /time  "],
)  # fmt: skip
def test_time_questions_are_answered_by_the_skill(
    client: TestClient, runner: SkillRunner, fake_llm: FakeLLM, question: str
) -> None:
    fake_llm.reply = "Bananas."  # the model's phrasing fails the check: the template is used
    assert chat(client, question) == TIME_TEXT
    # Only the skill's own prompts (its cascade tries a few seeds before the template); never a chat prompt.
    assert 1 <= len(fake_llm.prompts) <= 3 and all("Facts:" in p[-1].content for p in fake_llm.prompts)


def test_time_in_a_place(client: TestClient, runner: SkillRunner) -> None:
    assert chat(client, "what time is it in Tokyo?").startswith("It's 9:00 PM (21:00) on Thursday")
    assert chat(client, "What time is it in New York?").startswith("It's 7:00 AM (07:00) on Thursday")
    assert chat(client, "/time tz=Europe/Berlin phrase=no").startswith("It's 1:00 PM (13:00)")
    assert chat(client, "/time Asia/Kolkata", stream=True).startswith("It's 5:30 PM (17:30)")


@pytest.mark.parametrize(
    "text",
    ["what time is it in Narnia?", "What time does the shop open?", "Tell me about time travel",
     "/etc/passwd is a file", "/nosuchskill", "time flies", "what time is it when the train arrives?"],
)  # fmt: skip
def test_anything_else_goes_to_the_model(
    client: TestClient, runner: SkillRunner, fake_llm: FakeLLM, text: str
) -> None:
    fake_llm.reply = "The model answered."
    assert chat(client, text) == "The model answered."
    assert SkillShortcuts(runner).match(text) is None


def test_slash_commands_run_skills(client: TestClient, runner: SkillRunner, fake_llm: FakeLLM) -> None:
    assert chat(client, "/echo n=3 word=la") == "la la la"
    assert chat(client, "/echo 2") == "hi hi"  # a bare word fills the first parameter
    assert chat(client, "/echo n=lots").startswith("/echo: skill 'echo' argument n")
    assert chat(client, "/boom") == "/boom: skill 'boom' failed: division by zero"
    help_text = chat(client, "/help")
    assert "/time tz=… phrase=…" in help_text and "/seuss" in help_text and "/digest" in help_text
    fake_llm.reply = "Oh the cats, the library!\nA thing to see, for you and me."
    seuss = chat(client, "/seuss count=1")
    assert seuss.startswith('1. "Library opens for cats" (Example News)')
    assert seuss.endswith("Source: https://news1.example/story/1")
    digest = chat(client, "/digest overview=false")
    assert digest.startswith("Example News (1 new)\n- Library opens for cats — https://news1.example/story/1")
    assert chat(client, "/digest") == "No new feed items since the last digest."


def test_shortcut_turns_are_stored_in_the_conversation(client: TestClient, runner: SkillRunner) -> None:
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "/echo"}]})
    cid = r.json()["conversation_id"]
    turns = client.get(f"/api/conversations/{cid}").json()["messages"]
    assert [(t["role"], t["content"]) for t in turns] == [("user", "/echo"), ("assistant", "hi")]


def test_request_text_drops_greetings_and_politeness() -> None:
    assert request_text("Hey, could you tell me the time please?") == "tell me the time"
    assert request_text("OK so   what's the time right now?!") == "what's the time"
    assert request_text("what’s the time, please.") == "what's the time"
    assert request_text("What time is it in New York now?") == "What time is it in New York"


# --- a skill from outside the core declares its own slash command and phrases ---------------------------


def weather_args(city: str) -> dict[str, Any] | None:
    """Only cities this skill knows; anything else goes to the model."""
    return {"city": city.title()} if city.lower() in ("paris", "oslo") else None


@skill(
    "weather_report",
    slash="wx",
    phrases=[
        "how is the weather",
        "what's the weather like",
        "how is the weather in {city}",
        re.compile(r"do i need an? umbrella(?: today)?", re.IGNORECASE),
    ],
    from_phrase=weather_args,
)
def weather_report(ctx: SkillContext, city: str = "here") -> SkillResult:
    """Report the weather (always mild)."""
    return SkillResult(f"Weather for {city}: mild.")


@pytest.fixture
def with_weather(runner: SkillRunner) -> SkillRunner:
    runner.registry.add(specs_in(weather_report)[0])
    assert runner.registry.errors == []
    return runner


@pytest.mark.parametrize(
    ("text", "answer"),
    [("How is the weather?", "Weather for here: mild."), ("what's the weather like now", "Weather for here: mild."),
     ("Hey, how is the weather in paris please?", "Weather for Paris: mild."), ("/wx Oslo", "Weather for Oslo: mild."),
     ("/weather_report city=Rome", "Weather for Rome: mild."), ("Do I need an umbrella today?", "Weather for here: mild."),
     ("how is the weather in Atlantis?", "The model answered."), ("how is the weather on Mars", "The model answered."),
     ("what's the time in Oslo", "It's 1:00 PM (13:00) on Thursday, 15 January 2026, time zone Europe/Oslo (CET).")],
)  # fmt: skip
def test_declared_phrases_and_slash_reach_the_chat(
    client: TestClient, with_weather: SkillRunner, fake_llm: FakeLLM, text: str, answer: str
) -> None:
    fake_llm.reply = lambda m: "Bananas." if "Facts:" in m[-1].content else "The model answered."
    assert chat(client, text) == answer


def test_declared_phrases_reach_the_voice_grammar(client: TestClient, with_weather: SkillRunner) -> None:
    items = client.get("/api/skills").json()["data"]
    weather = next(i for i in items if i["name"] == "weather_report")
    assert weather["slash"] == "/wx"
    assert weather["phrases"] == [
        "how is the weather",
        "what's the weather like",
        "how is the weather in {city}",
    ]
    grammar = skill_phrases(items)
    assert {"how is the weather", "what's the weather like", "run weather report"} <= set(grammar)
    assert not [p for p in grammar if "{" in p or "umbrella" in p]  # open slots and regexes are chat-only
    assert {"what time is it", "read me the headlines", "tell me a seuss story"} <= set(grammar)
    assert skill_for("how is the weather", items) == "weather_report"
    assert skill_for("what time is it", items) == "time"
    assert skill_for("read me the headlines", items) == "digest"
    assert skill_for("run the weather report skill", items) == "weather_report"
    assert skill_for("how is the weather", [i for i in items if i["name"] != "weather_report"]) is None
    help_text = chat(client, "/help")
    assert '/wx city=… — Report the weather (always mild). (or say "how is the weather")' in help_text


def test_a_plugin_cannot_take_a_command_or_phrase(with_weather: SkillRunner, client: TestClient) -> None:
    import dataclasses

    registry = with_weather.registry
    spec = specs_in(weather_report)[0]
    registry.add(dataclasses.replace(spec, name="sneaky", slash="time", origin="evil 1.0"))
    assert registry.errors[-1] == "skill 'sneaky' from evil 1.0 ignored: builtin has the command /time"
    registry.add(dataclasses.replace(spec, name="wx", slash="", origin="evil 1.0"))
    assert registry.errors[-1] == "skill 'wx' from evil 1.0 ignored: builtin has the command /wx"
    registry.add(dataclasses.replace(spec, name="late", slash="late", phrases=("what time is it",)))
    assert "late" in registry.names()
    # loaded first, answers first
    assert SkillShortcuts(with_weather).match("what time is it?") == ("time", {})
