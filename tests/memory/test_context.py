"""Conversation turns indexed with the turns before them and their dates (memory/context.py), the
per-kind fusion weight, the context column's migration, and the eval's per-category report.

Chroma and SQLite are real (a temp dir); the embedder is the hashing fake from tests/memory_fakes.py.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from assistant.core.recall import TurnRecord
from memory.context import resolve_relative_dates, turn_context, with_dates_inline
from memory.eval import Dataset, EvalResult, as_memory, format_table, said_at, score_by_category
from memory.hybrid import fuse
from memory.keyword import Filters, KeywordIndex
from memory.recall import MemoryRecall
from memory.service import MemoryService, NewMemory, SearchConfig
from tests.fakes import FixedClock
from tests.memory_fakes import fake_memory

MONDAY = date(2023, 5, 8)


@pytest.fixture
def mem(tmp_path: Path, clock: FixedClock) -> MemoryService:
    m = fake_memory(tmp_path / "mem", clock)
    yield m
    m.close()


# -- relative dates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I went there yesterday", ["7 May 2023"]),
        ("we met last Saturday", ["6 May 2023"]),
        ("last Monday was hard", ["1 May 2023"]),
        ("see you next Monday", ["15 May 2023"]),
        ("next Friday then", ["12 May 2023"]),
        ("it was two weeks ago", ["week of 24 April 2023"]),
        ("a few days ago I ran", ["5 May 2023"]),
        ("3 days ago", ["5 May 2023"]),
        ("last month and last year", ["April 2023", "2022"]),
        ("in January, a month ago", ["April 2023"]),
        ("next month", ["June 2023"]),
        ("I'm painting today", ["8 May 2023"]),
        ("nothing relative here", []),
    ],
)
def test_relative_dates_resolve_against_the_day_said(text: str, expected: list[str]) -> None:
    assert resolve_relative_dates(text, MONDAY) == expected


def test_month_arithmetic_crosses_years() -> None:
    assert resolve_relative_dates("last month", date(2023, 1, 15)) == ["December 2022"]
    assert resolve_relative_dates("next month", date(2023, 12, 15)) == ["January 2024"]


def test_turn_context_holds_previous_turns_and_dates() -> None:
    said = datetime(2023, 5, 8, 13, 56, tzinfo=UTC).timestamp()
    ctx = turn_context(["Did you go to the lake?", ""], "Yes, yesterday!", said)
    assert ctx.split("\n") == ["Did you go to the lake?", "8 May 2023", "7 May 2023"]
    assert turn_context(["q"], "yesterday", said, dates=False) == "q"


# -- the service ----------------------------------------------------------------------------------------


def test_a_turn_is_found_by_the_turn_before_it_and_returned_alone(mem: MemoryService) -> None:
    mem.add_many([
        NewMemory("Where did you go camping with the kids?", "user", "c1"),
        NewMemory("We went to the mountains, it was lovely.", "assistant", "c1"),
    ])
    mem.add("Some note about a boiler service", "note")
    hits = mem.search("camping kids", k=5, mode="keyword")
    texts = [h.record.text for h in hits]
    assert texts[0] == "Where did you go camping with the kids?"  # its own words weigh most
    assert "We went to the mountains, it was lovely." in texts  # found by the turn before it
    answer = next(h for h in hits if h.record.source == "assistant")
    assert answer.record.text == "We went to the mountains, it was lovely."  # the context is never returned


def test_context_reaches_back_to_stored_turns_and_stays_in_its_conversation(mem: MemoryService) -> None:
    mem.add("Have you ever tried pottery?", "user", "c1")
    mem.add("An unrelated remark about pottery", "user", "c2")
    mem.add("Yes, I loved it.", "assistant", "c1")  # a later call: its context comes from the store
    mem.add("No idea.", "assistant", "c2")
    record = next(r for r in mem.list(Filters(conversation_id="c1"))[0] if r.source == "assistant")
    ids = [i for i, _ in mem.keyword.search("pottery", 10)]
    assert record.id in ids
    row = mem.keyword._db.execute("SELECT context FROM memories WHERE id = ?", (record.id,)).fetchone()
    assert row[0].startswith("Have you ever tried pottery?")
    assert "unrelated" not in row[0]


def test_turn_index_and_dates_come_from_the_add_path(mem: MemoryService) -> None:
    said = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    mem.add("first", "user", "c1", created_at=said)
    mem.add_many([NewMemory("I ran a charity race last Saturday", "user", "c1", {"speaker": "Mel"}, said),
                  NewMemory("kept", "user", "c1", {"turn": 42}, said)])
    records = sorted(mem.list(Filters(conversation_id="c1"))[0], key=lambda r: r.metadata["turn"])
    assert [r.metadata["turn"] for r in records] == [0, 1, 42]
    assert records[1].metadata["speaker"] == "Mel"
    assert [i for i, _ in mem.keyword.search("6 May 2023", 5)][0] == records[1].id  # resolved relative date
    note = mem.add("a note", "note")
    assert "turn" not in (mem.get(note) or pytest.fail()).metadata
    assert mem.keyword._db.execute("SELECT context FROM memories WHERE id = ?", (note,)).fetchone()[0] == ""


def test_context_can_be_switched_off(tmp_path: Path, clock: FixedClock) -> None:
    m = fake_memory(tmp_path / "m", clock, config=SearchConfig(context_turns=0, context_dates=False))
    try:
        m.add("Where did you go camping?", "user", "c1")
        m.add("To the mountains.", "assistant", "c1")
        assert [m.get(i) for i, _ in m.keyword.search("camping", 5)][0].source == "user"  # type: ignore[union-attr]
        assert len(m.keyword.search("camping", 5)) == 1
    finally:
        m.close()


def test_chat_turns_stored_by_recall_get_context(mem: MemoryService, clock: FixedClock) -> None:
    recall = MemoryRecall(mem, k=3)
    recall.remember_turns("c1", [TurnRecord("user", "What should I read about volcanoes?", "user"),
                                 TurnRecord("assistant", "Try the Krakatoa book.", "conversation")], clock.now())
    hits = mem.search("volcanoes", k=5, mode="keyword")
    assert "Try the Krakatoa book." in [h.record.text for h in hits]
    # The assistant's answer comes back to a message about what it said (memory/personal.py: an answer is
    # never recalled as a fact for any other message); then the answer, not only the question.
    later = recall.recall("what did you recommend to read on volcanoes?", conversation_id="c2", exclude_texts=[])
    assert later.block is not None and "Try the Krakatoa book." in later.block
    again = recall.recall("what to read on volcanoes", conversation_id="c3", exclude_texts=[])
    assert again.block is not None and "Try the Krakatoa book." not in again.block


def test_dense_weight_is_lower_for_conversation_turns(mem: MemoryService) -> None:
    ranks = {"dense": [("turn", 0.9), ("doc", 0.5), ("x", 0.1)], "keyword": [("doc", 5.0), ("turn", 4.0), ("y", 0.0)]}
    assert fuse(ranks, {"dense": 1.0, "keyword": 1.0}, "zscore")[0].id == "turn"
    kind = {"dense": {"turn": 0.25}}
    assert fuse(ranks, {"dense": 1.0, "keyword": 1.0}, "zscore", weight_of=kind)[0].id == "doc"
    assert fuse(ranks, {"dense": 1.0, "keyword": 1.0}, "rrf", weight_of=kind)[0].id == "doc"
    turn = mem.add("a turn", "user", "c1")
    note = mem.add("a note", "note")
    weights = mem._kind_weights({"dense": [(turn, 0.5), (note, 0.4)], "keyword": [(note, 2.0), ("gone", 1.0)]})
    assert weights == {"dense": {turn: 0.35}}


# -- the context column's migration ---------------------------------------------------------------------


def test_a_store_from_before_the_context_column_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "keyword.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE memories (rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, text TEXT NOT NULL,
            source TEXT NOT NULL, conversation_id TEXT, created_at REAL NOT NULL,
            metadata TEXT NOT NULL DEFAULT '{}', chunks INTEGER NOT NULL DEFAULT 0,
            embedded INTEGER NOT NULL DEFAULT 0);
        CREATE VIRTUAL TABLE memories_fts USING fts5(text, content='memories', content_rowid='rowid',
            tokenize='porter unicode61 remove_diacritics 2');
        CREATE TRIGGER memories_ai AFTER INSERT ON memories BEGIN
            INSERT INTO memories_fts(rowid, text) VALUES (new.rowid, new.text); END;
    """)
    db.execute("INSERT INTO memories(id, text, source, created_at, metadata, chunks, embedded) "
               "VALUES ('m1', 'the old boiler', 'note', 1.0, ?, 1, 1)", (json.dumps({}),))
    db.commit()
    db.close()
    idx = KeywordIndex(path)
    try:
        assert [i for i, _ in idx.search("boiler", 5)] == ["m1"]
        assert idx.delete("m1")
        assert idx.search("boiler", 5) == []
    finally:
        idx.close()
    idx = KeywordIndex(path)  # opened again: nothing left to migrate
    idx.close()


# -- the eval -------------------------------------------------------------------------------------------


def test_documents_with_a_conversation_are_turns_said_when_they_were() -> None:
    doc = {"text": "Caroline: hi", "metadata": {"conversation_id": "conv-1", "session_date_time":
                                                "1:56 pm on 8 May, 2023", "turn": 3, "nested": {"x": 1}}}
    m = as_memory("d1", doc)
    assert m is not None and m.conversation_id == "conv-1"
    assert m.created_at == datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    assert m.metadata == {"conversation_id": "conv-1", "session_date_time": "1:56 pm on 8 May, 2023",
                          "turn": 3, "doc_id": "d1"}
    assert as_memory("d2", {"title": "T", "text": "abstract"}).conversation_id is None  # type: ignore[union-attr]
    assert as_memory("d3", {"text": "  "}) is None
    assert said_at({"created_at": "2024-01-02T03:04:05Z"}) == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert said_at({"created_at": "nonsense", "session_date_time": "sometime"}) is None


def test_scores_are_reported_per_category() -> None:
    data = Dataset(
        corpus={},
        queries={"q1": {"_id": "q1", "metadata": {"category_name": "temporal"}},
                 "q2": {"_id": "q2", "metadata": {"category": 4}}, "q3": {"_id": "q3"}},
        qrels={"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 1}},
    )
    by = score_by_category({"q1": ["a"], "q2": ["x", "b"], "q3": []}, data)
    assert list(by) == ["4", "temporal"]
    assert by["temporal"]["ndcg@10"] == 1.0 and by["temporal"]["queries"] == 1
    assert by["4"]["recall@10"] == 1.0 and by["4"]["ndcg@10"] < 1.0
    result = EvalResult("dev", 3, 0, None, {"hybrid": {"ndcg@10": 0.5, "recall@5": 0.5, "recall@10": 0.5}},
                        {"hybrid": by})
    table = format_table(result)
    assert "by question category" in table and "temporal" in table
    assert result.as_dict()["categories"]["hybrid"]["temporal"]["queries"] == 1


def test_relative_dates_are_dated_in_place_for_a_reader_on_another_day() -> None:
    said = date(2023, 5, 8)  # a Monday
    assert with_dates_inline("I went to the dentist yesterday.", said) == (
        "I went to the dentist yesterday (7 May 2023)."
    )
    assert with_dates_inline("Last Saturday we hiked; next month I move.", said) == (
        "Last Saturday (6 May 2023) we hiked; next month (June 2023) I move."
    )
    assert with_dates_inline("My car is a blue Skoda.", said) == "My car is a blue Skoda."
