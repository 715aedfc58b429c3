"""`assistant eval everyday`: the checkers on fixed answers, the shipped question set, and a run through the
real chat path (real services, skills on, the eval's fixed clock and zone) on a scripted model."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from assistant.cli.eval_everyday import (
    EVAL_NOW,
    FixedClock,
    Report,
    check_answer,
    load_items,
    numbers,
    run_items,
    run_settings,
    select,
    table_rows,
)
from assistant.config import Settings
from assistant.core.errors import BadRequest
from assistant.llm.types import ChatMessage
from assistant.services import build_services
from tests.fakes import FakeLLM


def test_numbers_reads_digits_thousands_and_words() -> None:
    assert numbers("17 + 25 = 42.") == [17, 25, 42]
    assert numbers("There are 5,280 feet in a mile, about 1.6 km.") == [5280, 1.6]
    assert numbers("A spider has eight legs") == [8]
    assert numbers("no digits here") == []


def test_number_check_takes_the_first_or_last_number() -> None:
    check = {"type": "number", "values": [42], "tol": 0}
    assert check_answer(check, "42")
    assert check_answer(check, "17 + 25 = 42.")
    assert check_answer(check, "The answer is **42**, since 17 and 25 make 42.")
    assert not check_answer(check, "17 + 25 = 30.")
    assert not check_answer(check, "I am not sure.")
    near = {"type": "number", "values": [3.11], "tol": 0.06}
    assert check_answer(near, "5 km is about 3.1 miles.") and not check_answer(near, "5 km is 8 miles")


def test_accept_check_is_whole_words_and_honours_reject() -> None:
    day = {"type": "accept", "values": ["wednesday"], "reject": ["monday", "thursday"]}
    assert check_answer(day, "Wednesday comes after Tuesday.")
    assert not check_answer(day, "Tuesday comes after Monday.")
    assert not check_answer(day, "It is Wednesday or Thursday.")
    assert check_answer({"type": "accept", "values": ["Rome"]}, "The capital of Italy is Rome.")
    assert not check_answer({"type": "accept", "values": ["Rome"]}, "Romeo")


def test_regex_all_and_exact_checks() -> None:
    assert check_answer({"type": "regex", "pattern": r"\bAu\b"}, "The symbol is Au.")
    assert not check_answer({"type": "regex", "pattern": r"\bHELLO\b", "case": True}, "hello")
    summary = {"type": "all", "patterns": ["kettle", "recall|refund"], "max_sentences": 2}
    assert check_answer(summary, "A company recalls 40,000 kettles that can overheat.")
    assert not check_answer(summary, "A company recalls things.")
    assert not check_answer(summary, "Kettles. Recall. Refund. Stores.")
    yes = {"type": "exact", "values": ["yes"]}
    assert check_answer(yes, "Yes.") and check_answer(yes, " yes ") and not check_answer(yes, "Yes, of course.")
    with pytest.raises(ValueError):
        check_answer({"type": "nope"}, "x")


def test_the_shipped_set() -> None:
    items = load_items()
    assert len(items) >= 150
    assert len({i.id for i in items}) == len(items)
    cats = Counter(i.category for i in items)
    assert set(cats) == {"facts", "arithmetic", "dates", "times", "units", "instructions", "extraction", "summary"}
    confirm = sum(i.split == "confirm" for i in items)
    assert 0.28 < confirm / len(items) < 0.4  # about a third held out
    for i in items:  # every check is well-formed (an empty answer passes none)
        assert not check_answer(i.check, ""), i.id


def test_load_items_rejects_a_bad_split(tmp_path: Path) -> None:
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"id": "a", "split": "train", "category": "c", "question": "q", "check": {}}\n')
    with pytest.raises(ValueError, match="split"):
        load_items(path=bad)


def test_select() -> None:
    items = load_items()
    assert {i.split for i in select(items, "confirm", None)} == {"confirm"}
    assert len(select(items, "all", 3)) == 3
    assert {i.category for i in select(items, "all", None, ["units"])} == {"units"}
    with pytest.raises(BadRequest):
        select(items, "all", None, ["nothing"])


def _answer_42(messages: list[ChatMessage]) -> str:
    return "17 + 25 = 42."


def test_a_run_through_the_chat_path(tmp_path: Path) -> None:
    """Real services on a scripted model: the model's answers are checked, and "what time is it?" is
    answered by the time skill on the eval's clock and zone (09:30 in Berlin), as in a chat."""
    fake = FakeLLM(_answer_42)
    items = [i for i in load_items() if i.id in ("arithmetic-17+25", "facts-capital-france", "times-now")]
    services = build_services(run_settings(Settings(), tmp_path, 1, memory=False), clock=FixedClock(EVAL_NOW),
                              llm=fake)  # fmt: skip
    try:
        results = {r.id: r for r in run_items(services, items)}
    finally:
        services.close()
    assert results["arithmetic-17+25"].passed and results["arithmetic-17+25"].shortcut  # the calc skill
    assert not results["facts-capital-france"].passed
    assert results["times-now"].shortcut and results["times-now"].passed, results["times-now"].answer
    asked = [p[-1].content for p in fake.prompts]  # the time skill asked the model to phrase its facts too
    assert not any(a.endswith("What is 17 + 25?") for a in asked)  # a sum is computed, not asked
    report = Report("fake", "-", results=list(results.values()))
    rows = table_rows([report], report.categories())
    assert rows[-1][0] == "all" and rows[-1][-1].startswith("2/3")
    assert report.as_dict()["all"] == {"passed": 2, "total": 3, "rate": 0.667}
