"""Recovery at start of memory rows whose vectors are gone from Chroma (real Chroma dir, fake embedder)."""

from __future__ import annotations

from pathlib import Path

from tests.fakes import FixedClock
from tests.memory_fakes import fake_memory


def test_row_marked_embedded_whose_vector_is_missing_is_reembedded_at_start(tmp_path: Path) -> None:
    clock = FixedClock()
    m = fake_memory(tmp_path / "mem", clock)
    ids = [m.add(f"the spare key number {i} hangs under pot q{i}z") for i in range(4)]
    lost = ids[1]
    m.vectors.delete([lost])  # the row stays embedded = 1, but Chroma no longer has its vector
    assert lost not in [h.record.id for h in m.search("spare key pot q1z", k=4, mode="dense")]
    m.close()

    m = fake_memory(tmp_path / "mem", clock)  # start: recover()
    try:
        dense = [h.record.id for h in m.search("spare key pot q1z", k=1, mode="dense")]
        assert dense == [lost]
        assert m.vectors.memory_ids() == set(ids)
        assert m.vectors.count() == m.keyword.expected_chunks()
        assert m.recover() == {"reembedded": 0, "deleted": 0, "orphans": 0}  # nothing left to do
    finally:
        m.close()


def test_recovery_reports_what_it_reembedded(tmp_path: Path) -> None:
    clock = FixedClock()
    m = fake_memory(tmp_path / "mem", clock)
    ids = [m.add(f"note {i} about the shed roof") for i in range(3)]
    m.vectors.delete(ids[:2])
    stats = m.recover()
    assert stats["reembedded"] == 2
    assert m.vectors.memory_ids() == set(ids)
    m.close()


def test_vector_of_a_deleted_row_is_removed_not_reembedded(tmp_path: Path) -> None:
    clock = FixedClock()
    m = fake_memory(tmp_path / "mem", clock)
    keep = m.add("keep this note about the garden hose")
    gone = m.add("forget this note about the attic ladder")
    m.keyword.delete(gone)
    m.keyword.done_deleting([gone])  # the queued delete is lost: Chroma still has an orphan vector
    stats = m.recover()
    assert stats["orphans"] == 1 and stats["reembedded"] == 0
    assert m.vectors.memory_ids() == {keep}
    m.close()
