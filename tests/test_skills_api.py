"""The skill API (decorator, arguments), /api/skills, and chat shortcuts (/time, "what time is it?")."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from assistant.core.errors import AssistantError, BadRequest, NotFound
from assistant.services import Services
from assistant.skillkit.shortcuts import SkillShortcuts
from assistant.skillkit.api import Param, SkillContext, SkillResult, skill
from assistant.skillkit.registry import SkillRegistry, SkillRunner, parse_args, specs_in
from tests.fakes import FakeLLM
from tests.skill_fakes import FakeFeeds, entry


@skill("echo", "Echo the arguments", params={"n": Param(int, 1, "times"), "word": Param(str, "hi", "what")})
def echo(ctx: SkillContext) -> SkillResult:
    return SkillResult(" ".join([ctx.args["word"]] * ctx.args["n"]), data={"trigger": ctx.trigger})


@skill("boom", "Always fails")
def boom(ctx: SkillContext) -> SkillResult:
    raise ZeroDivisionError("division by zero")


def test_decorator_marks_without_registering_globally() -> None:
    [spec] = specs_in(echo)
    assert spec.name == "echo" and spec.func is echo and spec.params["n"].type is int
    with pytest.raises(ValueError, match="lowercase"):
        skill("Bad Name", "x")


def test_builtins_are_discovered() -> None:
    registry = SkillRegistry.discover(group=None)
    assert registry.names() == ["digest", "seuss", "time"]
    assert registry.errors == []


def test_arguments_are_converted_and_checked() -> None:
    [spec] = specs_in(echo)
    assert parse_args(spec, {"n": "3"}) == {"n": 3, "word": "hi"}
    with pytest.raises(BadRequest, match="argument n: Input should be a valid integer"):
        parse_args(spec, {"n": "many"})
    with pytest.raises(BadRequest, match=r"has no parameter 'colour' \(parameters: n, word\)"):
        parse_args(spec, {"colour": "red"})


@pytest.fixture
def runner(services: Services) -> SkillRunner:
    registry = SkillRegistry.discover(group=None)
    registry.add(specs_in(echo)[0])
    registry.add(specs_in(boom)[0])
    services.skills = SkillRunner(registry, services)
    services.chat.shortcuts = SkillShortcuts(services.skills)
    services.feeds = FakeFeeds([entry(1, "Library opens for cats")])
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
    assert [s["name"] for s in listed["data"]] == ["boom", "digest", "echo", "seuss", "time"]
    assert listed["errors"] == []
    r = client.post("/api/skills/echo/run", json={"args": {"n": "2"}})
    assert r.status_code == 200 and r.json()["text"] == "hi hi" and r.json()["data"] == {"trigger": "api"}
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
    assert len(fake_llm.prompts) == 1 and "Facts:" in fake_llm.prompts[0][-1].content  # only the skill's


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
