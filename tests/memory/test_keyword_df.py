"""Keyword search leaves out query terms held by more than ``max_df`` of the memories (memory.keyword_max_df)."""

from __future__ import annotations

from pathlib import Path

import pytest

import memory.keyword as kw
from memory.keyword import KeywordIndex, MemoryRecord


@pytest.fixture
def idx(tmp_path: Path):  # type: ignore[no-untyped-def]
    texts = [f"apple pie number {i}" for i in range(6)] + [
        "apple and banana bread",
        "banana split",
        "zebra crossing near the apple tree",
        "kiwi jam",
    ]
    index = KeywordIndex(tmp_path / "k.sqlite3")
    index.insert([MemoryRecord(f"m{i}", t, "note", None, float(i)) for i, t in enumerate(texts)], [1] * len(texts))
    yield index
    index.close()


def ids(hits: list[tuple[str, float]]) -> set[str]:
    return {i for i, _ in hits}


def test_a_term_in_most_memories_is_left_out(idx: KeywordIndex) -> None:
    # "apple" is in 8 of 10 memories, "zebra" in one
    assert ids(idx.search("apple zebra", 10, max_df=0.5, min_df_rows=0)) == {"m8"}
    assert len(idx.search("apple zebra", 10, max_df=None)) == 8  # every term: every apple memory matches


def test_when_every_term_is_common_the_rarest_is_kept(idx: KeywordIndex) -> None:
    # apple: 8 of 10, banana: 2 of 10; both above 10 %
    assert ids(idx.search("apple banana", 10, max_df=0.1, min_df_rows=0)) == {"m6", "m7"}


def test_a_single_term_is_never_left_out(idx: KeywordIndex) -> None:
    assert len(idx.search("apple", 10, max_df=0.1, min_df_rows=0)) == 8


def test_terms_under_the_share_all_count(idx: KeywordIndex) -> None:
    assert ids(idx.search("banana kiwi", 10, max_df=0.2, min_df_rows=0)) == {"m6", "m7", "m9"}


def test_counts_are_reused_then_counted_again(idx: KeywordIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(kw.time, "monotonic", lambda: clock[0])
    assert ids(idx.search("zebra kiwi", 10, max_df=0.15, min_df_rows=0)) == {"m8", "m9"}
    # ten more zebras: "zebra" is now in 11 of 20 memories
    more = [MemoryRecord(f"z{i}", f"zebra herd {i}", "note", None, 50.0 + i) for i in range(10)]
    idx.insert(more, [1] * len(more))
    clock[0] += 60  # within the reuse time: the old counts still hold
    assert ids(idx.search("zebra kiwi", 20, max_df=0.15, min_df_rows=0)) == {"m8", "m9", *(m.id for m in more)}
    clock[0] += kw.STATS_TTL_S  # counted again: zebra is common now
    assert ids(idx.search("zebra kiwi", 20, max_df=0.15, min_df_rows=0)) == {"m9"}


def test_a_term_held_by_few_memories_counts_whatever_its_share(idx: KeywordIndex) -> None:
    # apple is in 80 % of the memories, but in only 8: below min_df_rows it costs nothing to keep
    assert len(idx.search("apple zebra", 10, max_df=0.5, min_df_rows=8)) == 8
    assert ids(idx.search("apple zebra", 10, max_df=0.5, min_df_rows=7)) == {"m8"}


def test_by_default_a_small_memory_keeps_every_term(idx: KeywordIndex) -> None:
    assert len(idx.search("apple zebra", 10)) == 8  # 10 memories: far under MIN_DF_ROWS
