"""`assistant eval choice`: the shipped request set, the rules-only baseline and the report, with a fake
choice (no model)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from assistant.cli.eval_choice import (
    NONE,
    ChoiceItem,
    ModelReport,
    baseline_router,
    load_items,
    run_items,
    same_route,
)
from assistant.config import load_settings
from assistant.core.clock import SystemClock
from assistant.llm.types import ChatMessage, Completion, GenerationParams
from assistant.skillkit.registry import SkillParts, SkillRegistry, SkillRunner
from assistant.skillkit.skill_choice import Choice, build_skill_choice


def _chooser() -> Any:
    def never(messages: list[ChatMessage], params: GenerationParams) -> Completion:
        raise AssertionError("no model here")

    runner = SkillRunner(SkillRegistry.discover(), SkillParts(load_settings(None), SystemClock(), None))
    return build_skill_choice(never, skills=runner, memory=True, remind=lambda t, c: t, note=lambda t, c: t)


def test_the_set_has_100_requests_or_more_each_labelled_with_an_option_and_both_splits() -> None:
    items = load_items()
    assert len(items) >= 100 and len({i.id for i in items}) == len(items)
    assert len({i.text.lower() for i in items}) == len(items)
    names = {o.name for o in _chooser().options} | {NONE}
    assert {i.expected for i in items} <= names
    per_split = Counter(i.split for i in items)
    assert per_split["confirm"] >= 30 and per_split["dev"] >= 60
    for label in {i.expected for i in items}:  # every label is in both splits
        assert {i.split for i in items if i.expected == label} == {"dev", "confirm"}


def test_no_request_of_the_set_is_an_example_in_the_prompt() -> None:
    prompt = _chooser().prompt.lower()
    assert [i.text for i in load_items() if f"\n{i.text.lower()} ->" in prompt] == []


def test_the_baseline_routes_rules_and_shortcuts_without_running_anything() -> None:
    route = baseline_router(load_settings(None))
    assert route("remind me in 10 minutes to check the oven") == "set_reminder"
    assert route("remember that my locker code is 4512") == "save_note"
    assert route("what time is it?") == "time"
    assert route("what's 2+2") == "calc"
    assert route("tldr https://example.com/a") == "summarize"
    assert route("anything new on the BBC?") is None
    assert route("how are you") is None


def test_the_report_counts_right_and_wrong_routes_and_the_added_latency() -> None:
    items = [
        ChoiceItem("a", "dev", "what time is it?", "time"),  # the baseline routes it: no choice
        ChoiceItem("b", "dev", "anything new on the BBC?", "digest"),  # the choice routes it right
        ChoiceItem("c", "confirm", "who wrote Hamlet?", NONE),  # the choice routes it to a skill: wrong
        ChoiceItem("d", "confirm", "hello", NONE),  # small talk: none, not asked
    ]
    answers = {"anything new on the BBC?": Choice("digest", asked=True, seconds=1.0),
               "who wrote Hamlet?": Choice("calc", {"question": "x"}, asked=True, seconds=3.0),
               "hello": Choice(NONE)}  # fmt: skip
    asked: list[str] = []

    def choose(text: str) -> Choice:
        asked.append(text)
        return answers[text]

    report = ModelReport("fake", "-")
    report.rows = run_items(choose, baseline_router(load_settings(None)), items, None)
    assert asked == ["anything new on the BBC?", "who wrote Hamlet?", "hello"]
    s = report.stats()
    assert (s["baseline_right"], s["baseline_wrong_skill"]) == (0.75, 0.0)  # time, and the two none items
    assert (s["cascade_right"], s["cascade_wrong_skill"]) == (0.75, 0.25)
    assert (s["asked"], s["left_to_model"], s["added_median_s"], s["added_p95_s"]) == (2, 3, 1.0, 3.0)
    assert report.stats("dev")["cascade_right"] == 1.0
    assert report.as_dict()["confirm"]["cascade_wrong_skill"] == 0.5


def test_searching_memory_and_plain_chat_are_the_same_answer() -> None:
    """``search_memory`` runs nothing (plain chat answers, with recall), and a question about the user's own
    life goes to plain chat without asking the model: either route answers a memory question."""
    assert same_route(NONE, "search_memory") and same_route("search_memory", NONE)
    assert not same_route("time", "search_memory") and not same_route(NONE, "time")
    report = ModelReport("fake", "-")
    report.rows = run_items(
        lambda text: Choice(NONE),
        baseline_router(load_settings(None)),
        [ChoiceItem("m", "dev", "where did I park the car?", "search_memory")],
        None,
    )
    assert report.stats()["cascade_right"] == 1.0 and report.stats()["cascade_wrong_skill"] == 0.0
