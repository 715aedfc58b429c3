"""`assistant eval locomo`: LoCoMo's answer scorer on hand-computed cases, the seeded sample, the prompt each
condition builds (off: no memories; recall: what the daemon recalls; gold: the evidence turns, dated, where
recall puts them) through the real chat turn and real memory on a fake model, the shipped data's shape (skips
without ../shared/data) and one tiny run on the real SmolLM2 (slow)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from assistant.cli.eval_everyday import FixedClock, ModelChoice, run_settings
from assistant.cli.eval_locomo import (
    ANSWER_STYLE,
    CONDITIONS,
    asked_at,
    choose,
    evaluate,
    run_conversation,
    table_lines,
    user_message,
)
from assistant.config import Settings
from assistant.core.errors import BadRequest
from assistant.evals.locomo import (
    Question,
    declines,
    load_locomo,
    multi_hop_f1,
    normalize_answer,
    sample,
    score_answer,
    summarise,
    token_f1,
)
from assistant.llm.types import ChatMessage
from assistant.services import build_services
from tests.conftest import shared_data
from tests.fakes import FakeLLM
from tests.memory_fakes import HashingEmbedder

# --- the scorer (the paper's normalisation, stems, F1) ---------------------------------------------------


def test_normalisation_is_the_papers() -> None:
    assert normalize_answer("The Cat, and a Hat!") == "cat hat"
    assert normalize_answer("  An apple;  the   PEAR. ") == "apple pear"
    assert normalize_answer("Caroline's") == "carolines"  # punctuation goes, the letters stay together
    assert normalize_answer("theatre and andes") == "theatre andes"  # whole words only


def test_token_f1_by_hand() -> None:
    assert token_f1("7 May 2023", "7 May 2023") == 1.0
    assert token_f1("On 7 May, 2023.", "7 May 2023") == pytest.approx(2 * 0.75 * 1 / 1.75)  # "on" is extra
    # she went on 7 may | 7 may 2023: 2 shared, precision 2/5, recall 2/3, F1 = (8/15) / (16/15)
    assert token_f1("She went on 7 May", "7 May 2023") == pytest.approx(0.5)
    assert token_f1("painting sunrises", "painted a sunrise") == 1.0  # Porter stems: paint, sunris
    assert token_f1("Sweden", "7 May 2023") == 0.0
    assert token_f1("", "7 May 2023") == 0.0
    assert token_f1("2022 2022", "2022") == pytest.approx(2 * 0.5 * 1 / 1.5)  # a bag: the repeat is extra


def test_the_category_rules() -> None:
    # multi-hop: each comma part of the reference takes its best part of the answer; the mean
    assert multi_hop_f1("pottery, camping", "pottery, camping, painting") == pytest.approx(2 / 3)
    assert score_answer(1, "camping and pottery", "pottery, camping") == pytest.approx((2 / 3 + 2 / 3) / 2)
    # open-domain: only the reference's part before ";"
    assert score_answer(3, "Psychology", "Psychology; counseling certification") == 1.0
    assert score_answer(2, "7 May 2023", "7 May 2023") == 1.0
    assert score_answer(4, "cozy and comfortable", "cozy and comfortable") == 1.0
    # adversarial: right when the answer declines (the paper's phrases and the daemon's)
    assert score_answer(5, "That is not mentioned in the conversation.", "") == 1.0
    assert score_answer(5, "No information available.", "") == 1.0
    assert score_answer(5, "I don\u2019t know.", "") == 1.0
    assert score_answer(5, "Self-care is important.", "") == 0.0
    assert declines("I do not know that.") and not declines("She knows it well.")


def test_the_summary_leaves_adversarial_out_of_overall() -> None:
    rows = [
        {"category": 4, "scores": {"off": 0.0, "gold": 1.0}, "declined": {"off": True, "gold": False}},
        {"category": 2, "scores": {"off": 0.5, "gold": 0.5}, "declined": {"off": False, "gold": False}},
        {"category": 5, "scores": {"off": 1.0, "gold": 0.0}, "declined": {"off": True, "gold": False}},
    ]
    s = summarise(rows, ["off", "gold"])
    assert s["off"]["overall"] == {"score": 0.25, "questions": 2}
    assert s["gold"]["overall"] == {"score": 0.75, "questions": 2}
    assert s["off"]["adversarial"] == {"score": 1.0, "questions": 1}
    assert s["off"]["declined_answerable"] == 0.5 and "open-domain" not in s["off"]


# --- the sample ------------------------------------------------------------------------------------------


def _questions() -> list[Question]:
    return [
        Question(f"{c}:q{i}", c, 1 + i % 5, f"question {i}?", f"answer {i}", (f"{c}:D1:{i}",))
        for c in ("conv-a", "conv-b") for i in range(40)
    ]  # fmt: skip


def test_the_sample_is_seeded_and_stratified() -> None:
    qs = _questions()
    first = sample(qs, 3, seed=7)
    assert first == sample(qs, 3, seed=7)  # the same seed, the same questions
    assert first != sample(qs, 3, seed=8)
    assert len(first) == 2 * 5 * 3  # three of each category from each conversation
    assert [q.id for q in first] == [q.id for q in qs if q in first]  # file order
    # the picks of one (conversation, category) do not depend on what else is chosen
    only_a = sample(qs, 3, seed=7, conversations=["conv-a"])
    assert only_a == [q for q in first if q.conversation == "conv-a"]
    assert sample(qs, 3, seed=7, categories=[2]) == [q for q in first if q.category == 2]
    assert sample(qs, None) == qs and len(sample(qs, 100)) == len(qs)
    assert set(sample(qs, 2, seed=7)) < set(first)  # a smaller sample is a part of a larger one


# --- the three conditions, through the real chat turn and real memory (fake model) -----------------------

DATES = ("1:56 pm on 8 May, 2023", "10:37 am on 27 June, 2023")
TURNS = [
    ("Caroline", "Hey Mel! I went to a LGBTQ support group yesterday and it was so powerful.", 0),
    ("Melanie", "Wow, that's cool, Caroline! What happened that was so awesome?", 0),
    ("Caroline", "The transgender stories were so inspiring.", 0),
    ("Melanie", "I painted a lake sunrise last year, it is special to me.", 0),
    ("Caroline", "I'm keen on counseling and working in mental health.", 1),
    ("Melanie", "We went camping in the mountains with the kids last weekend.", 1),
]


def _write_data(folder: Path) -> Path:
    folder.mkdir(parents=True)
    with (folder / "corpus.jsonl").open("w") as f:
        for n, (speaker, text, session) in enumerate(TURNS, 1):
            meta = {"conversation_id": "conv-t", "session": session + 1, "session_date_time": DATES[session],
                    "dia_id": f"D{session + 1}:{n}", "turn": n, "speaker": speaker}  # fmt: skip
            f.write(json.dumps({"_id": f"conv-t:D{session + 1}:{n}", "title": "", "text": f"{speaker}: {text}",
                                "metadata": meta}) + "\n")  # fmt: skip
    questions = [
        ("q0", 2, "When did Caroline go to the LGBTQ support group?", "7 May 2023", ["D1:1"]),
        ("q1", 4, "What did Melanie paint?", "a lake sunrise", ["D1:4"]),
        ("q2", 5, "What did Caroline paint?", None, ["D1:4"]),
    ]
    with (folder / "queries.jsonl").open("w") as f:
        for qid, category, text, answer, evidence in questions:
            meta = {"conversation_id": "conv-t", "category": category, "evidence": evidence, "answer": answer}
            f.write(json.dumps({"_id": f"conv-t:{qid}", "text": text, "metadata": meta}) + "\n")
    return folder


def _run(tmp_path: Path, reply: Callable[[list[ChatMessage]], str]) -> tuple[list[Any], FakeLLM, Any]:
    data = load_locomo(_write_data(tmp_path / "locomo"))
    llm = FakeLLM(reply)
    turns = data.turns["conv-t"]
    settings = run_settings(Settings(), tmp_path / "run", 1, memory=True)
    services = build_services(
        settings, clock=FixedClock(asked_at(turns)), llm=llm, embedder=HashingEmbedder()
    )
    try:
        rows = run_conversation(services, turns, data.questions)
        count = services.memory.count() if services.memory else 0
    finally:
        services.close()
    return rows, llm, count


def test_each_condition_builds_its_prompt(tmp_path: Path) -> None:
    rows, llm, stored = _run(tmp_path, lambda m: "7 May 2023")
    assert stored == len(TURNS)  # the questions and answers were not stored in memory
    assert len(llm.prompts) == 3 * len(CONDITIONS)
    by = {c: llm.prompts[i] for i, c in enumerate(CONDITIONS)}  # the first question, in condition order
    question = "When did Caroline go to the LGBTQ support group? " + ANSWER_STYLE
    for condition, prompt in by.items():
        assert prompt[0].role == "system" and prompt[-1].role == "user", condition
        assert prompt[-1].content.endswith(question), condition
        assert len(prompt) == 2, condition  # a new conversation each time: no history
    assert by["off"][-1].content == question  # no memories at all
    gold = by["gold"][-1].content
    assert gold.startswith("## Memories")
    # the evidence turn, with the day its session was said and its "yesterday" dated; the speaker's own "I"
    # (a quotation, not the user's words); no other turn
    assert (
        "[2023-05-08, the user's note] Caroline: Hey Mel! I went to a LGBTQ support group yesterday (7 May 2023)"
        in gold
    )
    assert "transgender" not in gold and "camping" not in gold
    recall = by["recall"][-1].content
    assert recall.startswith("## Memories") and "support group" in recall and "2023-05-08" in recall
    first = rows[0].as_dict()
    assert first["scores"] == {"off": 1.0, "recall": 1.0, "gold": 1.0}
    assert first["evidence_recalled"] >= 1 and first["recalled"] >= first["evidence_recalled"]
    assert first["model_answered"] == {c: True for c in CONDITIONS}
    # the sunrise question's gold prompt holds its own evidence, not the previous question's
    sunrise = llm.prompts[3 + 2][-1].content
    assert "lake sunrise" in sunrise and "support group" not in sunrise


def test_scores_follow_the_answers(tmp_path: Path) -> None:
    def reply(messages: list[ChatMessage]) -> str:
        text = messages[-1].content
        if "## Memories" not in text:
            return "I don't know."
        return "A lake sunrise." if "paint" in text.rsplit("---", 1)[-1] else "7 May 2023"

    rows, _, _ = _run(tmp_path, reply)
    got = {r.question.id: r.as_dict() for r in rows}
    assert got["conv-t:q0"]["scores"] == {"off": 0.0, "recall": 1.0, "gold": 1.0}
    assert got["conv-t:q1"]["scores"]["gold"] == 1.0 and got["conv-t:q1"]["scores"]["off"] == 0.0
    assert got["conv-t:q2"]["scores"]["off"] == 1.0  # adversarial: declining is right
    assert got["conv-t:q2"]["declined"]["off"] and not got["conv-t:q2"]["declined"]["gold"]
    s = summarise([r.as_dict() for r in rows], CONDITIONS)
    assert s["off"]["overall"]["score"] == 0.0 and s["gold"]["overall"]["score"] == 1.0
    assert s["off"]["declined_answerable"] == 1.0


def test_the_arguments_are_checked(tmp_path: Path) -> None:
    folder = _write_data(tmp_path / "locomo")

    def args(**kw: Any) -> argparse.Namespace:
        base = {"directory": folder, "conversations": None, "categories": None, "conditions": "off,recall,gold",
                "limit": 4, "sample_seed": 26}  # fmt: skip
        return argparse.Namespace(**{**base, **kw})

    _, questions, conditions = choose(args())
    assert len(questions) == 3 and conditions == list(CONDITIONS)
    assert [q.category for q in choose(args(categories="2,4"))[1]] == [2, 4]
    for bad in ({"conversations": "conv-x"}, {"categories": "9"}, {"categories": "x"}, {"conditions": "all"},
                {"directory": tmp_path / "nowhere"}):  # fmt: skip
        with pytest.raises(BadRequest):
            choose(args(**bad))


# --- the shipped data (../shared/data) --------------------------------------------------------------------


def test_the_locomo_dev_data_and_the_default_sample() -> None:
    data = load_locomo(shared_data("locomo-dev"))
    assert data.conversations == ["conv-26", "conv-30", "conv-41", "conv-42", "conv-43"]
    assert len(data.questions) == 997
    known = {doc_id for turns in data.turns.values() for doc_id, _ in turns}
    assert all(e in known for q in data.questions for e in q.evidence)  # every evidence turn is in the corpus
    assert all(q.answer for q in data.questions if q.category != 5)
    chosen = sample(data.questions, 4)
    assert chosen == sample(data.questions, 4) and len(chosen) == 96  # conv-30 has no open-domain question
    for conversation, turns in data.turns.items():
        assert asked_at(turns).year >= 2022, conversation


# --- the real model (slow) ----------------------------------------------------------------------------


@pytest.mark.slow
def test_a_tiny_slice_on_smollm2(tmp_path: Path, settings: Settings) -> None:
    from assistant.cli.eval_everyday import choose_models

    data = load_locomo(_write_data(tmp_path / "locomo"))
    (smollm2,) = choose_models(settings, ["smollm2"])
    run = evaluate(ModelChoice(smollm2.label, smollm2.path), settings, data, data.questions, max_tokens=16)
    report = run.as_dict()
    json.dumps(report)
    assert report["questions"] == 3 and len(report["rows"]) == 3
    for row in report["rows"]:
        assert set(row["answers"]) == set(CONDITIONS) and all(0.0 <= s <= 1.0 for s in row["scores"].values())
    assert report["evidence_recalled_share"] is not None
    assert any(line.startswith("| **overall F1") for line in table_lines([run]))
    assert user_message(data.questions[0]).endswith(ANSWER_STYLE)
