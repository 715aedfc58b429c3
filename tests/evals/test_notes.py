"""`assistant eval notes`: the scaffolding detector, the shipped notes and questions, and a run through the
real chat path with memory on (real memory, the hashing embedder) on scripted models: one that answers
from the recalled note, one that echoes the recall block (counted wrong for its scaffolding)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from assistant.cli.eval_everyday import EVAL_NOW, FixedClock, check_answer, run_settings
from assistant.cli.eval_notes import load_notes, run_questions, scaffolding, score
from assistant.config import Settings
from assistant.llm.types import ChatMessage
from assistant.services import build_services
from memory.recall import addressed_to_the_user
from tests.fakes import FakeLLM
from tests.memory_fakes import HashingEmbedder


def test_scaffolding_is_found() -> None:
    assert scaffolding("Tomas is allergic to peanuts.") == []
    assert scaffolding("The password is maple-river-42.") == []
    assert scaffolding("## Memories\nRecalled from earlier conversations") != []
    assert scaffolding("[2026-03-17, the user's note] Tomas is allergic to peanuts.") != []
    assert scaffolding("Yes.\n---\nWhat else?") != []
    assert scaffolding("<<<RECALLED-1234abcd>>>") != []
    assert scaffolding("Memories: Tomas is allergic") != []
    assert scaffolding("The user said that Tomas is allergic to peanuts.") != []


def test_the_shipped_notes_and_questions() -> None:
    notes, questions = load_notes()
    assert len(notes) >= 30 and len(questions) >= 30
    assert len({q.id for q in questions}) == len(questions)
    assert 0.28 < sum(q.split == "confirm" for q in questions) / len(questions) < 0.4
    text = {n.id: n.text for n in notes}
    for q in questions:  # the note a question is about answers it, and no check passes on nothing
        assert not check_answer(q.check, ""), q.id
        if q.note is not None:
            assert check_answer(q.check, text[q.note]), q.id


def test_scaffolding_makes_an_answer_wrong() -> None:
    _, questions = load_notes()
    q = next(q for q in questions if q.id == "tomas-allergy")
    assert score(q, "Yes, Tomas is allergic to peanuts.") == (True, [])
    right, found = score(q, "## Memories\n- [2026-03-10, the user's note] Tomas is allergic to peanuts.")
    assert not right and found


def _run(tmp_path: Path, reply: Callable[[list[ChatMessage]], str]) -> list[dict[str, object]]:
    notes, questions = load_notes()
    chosen = [q for q in questions if q.id in ("tomas-allergy", "wifi", "bike-lock")]
    services = build_services(run_settings(Settings(), tmp_path, 1, memory=True), clock=FixedClock(EVAL_NOW),
                              llm=FakeLLM(reply), embedder=HashingEmbedder())  # fmt: skip
    try:
        return [r.as_dict() for r in run_questions(services, notes, chosen)]
    finally:
        services.close()


def test_a_run_with_memory_on(tmp_path: Path) -> None:
    notes, _ = load_notes()

    def from_the_note(messages: list[ChatMessage]) -> str:
        words = {w for w in re.findall(r"[a-z]+", messages[-1].content.rsplit("\n", 1)[-1].lower()) if len(w) > 3}
        for n in notes:  # the recalled note (as recall reads it back to the user) sharing a word of the question
            shown = addressed_to_the_user(n.text)
            if shown in messages[-1].content and words & set(re.findall(r"[a-z]+", shown.lower())):
                return shown
        return "I don't know."

    results = _run(tmp_path / "a", from_the_note)
    assert [r["passed"] for r in results] == [True, True, True], results
    assert all(r["recalled_note"] for r in results)

    echo = _run(tmp_path / "b", lambda m: m[-1].content)  # the whole message, recall blocks and all
    assert not any(r["passed"] for r in echo)
    assert all(r["scaffolding"] for r in echo)


def test_a_refusal_is_found_and_general_help_is_not_one() -> None:
    from assistant.cli.eval_notes import refuses

    for said in ("I don't know.", "You don't know.", "I'm sorry, I don't have information about your brother."):
        assert refuses(said), said
    for said in ("Boil it for 9 minutes; if you don't know the size, check.", "A photo album.", "5 - 2 = 3."):
        assert not refuses(said), said
    _, questions = load_notes()
    gift = next(q for q in questions if q.id == "general-gift")
    assert score(gift, "A photo album of her life.")[0]
    assert not score(gift, "I don't know your mum's birthday gift.")[0]  # a refusal, though it says "gift"
