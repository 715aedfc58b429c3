"""The outbox on its own: committed writes, per-channel state, release order for SSE replay."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from assistant.notify.outbox import Outbox

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def add(outbox: Outbox, title: str, *, held_for: timedelta | None = None, channels: list[str] | None = None):  # type: ignore[no-untyped-def]
    return outbox.add(
        title=title,
        body="b",
        source="test",
        urgent=False,
        data={"k": [1, "ü"]},
        created_at=T0,
        release_at=T0 + (held_for or timedelta(0)),
        channels=channels if channels is not None else ["a", "b"],
    )


def test_add_is_visible_to_another_connection_at_once(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "n.sqlite3")
    try:
        n, seq = add(outbox, "first")
        assert seq == 1 and n.id == 1
        other = sqlite3.connect(tmp_path / "n.sqlite3")
        assert other.execute("SELECT title, data FROM notifications").fetchall() == [
            ("first", '{"k": [1, "ü"]}')
        ]
        assert other.execute("SELECT channel, status FROM deliveries ORDER BY channel").fetchall() == [
            ("a", "pending"),
            ("b", "pending"),
        ]
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        other.close()
    finally:
        outbox.close()


def test_channels_progress_independently(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "n.sqlite3")
    try:
        n1, _ = add(outbox, "one")
        n2, _ = add(outbox, "two")
        outbox.mark_delivered(n1.id, "a", T0)
        assert [n.id for n in outbox.due("a", T0)] == [n2.id]
        assert [n.id for n in outbox.due("b", T0)] == [n1.id, n2.id]
        assert outbox.mark_attempt_failed(n1.id, "b", T0, "boom", permanent=False, max_attempts=0) == (
            1,
            False,
        )
        assert outbox.mark_attempt_failed(n1.id, "b", T0, "boom", permanent=False, max_attempts=2) == (
            2,
            True,
        )
        assert [n.id for n in outbox.due("b", T0)] == [n2.id]
        assert outbox.pending_count() == 2 and outbox.pending_count("a") == 1
        status = outbox.get(n1.id)
        assert status is not None
        assert {c.channel: (c.status, c.attempts, c.last_error) for c in status.channels} == {
            "a": ("delivered", 1, None),
            "b": ("failed", 2, "boom"),
        }
        assert [s.notification.id for s in outbox.history(10, 0)] == [n2.id, n1.id]
        assert [s.notification.id for s in outbox.history(1, 1)] == [n1.id]
    finally:
        outbox.close()


def test_held_notifications_are_not_due_and_replay_follows_release_order(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "n.sqlite3")
    try:
        held, seq_held = add(outbox, "held", held_for=timedelta(hours=1))
        urgent, seq_urgent = add(outbox, "urgent")
        assert seq_held is None and seq_urgent == 1
        assert outbox.due("a", T0) == [urgent]
        assert outbox.next_release() == T0 + timedelta(hours=1)
        assert outbox.release_due(T0 + timedelta(minutes=59)) == []
        released = outbox.release_due(T0 + timedelta(hours=1))
        assert [(n.id, seq) for n, seq in released] == [(held.id, 2)]
        # A client whose last event was the urgent one (id 2) is owed the held one (id 1), released later.
        after = outbox.seq_after_id(urgent.id)
        assert [n.id for n, _ in outbox.released_after(after)] == [held.id]
        assert outbox.released_after(outbox.seq_after_id(held.id)) == []
        # An id the outbox never had: everything released up to it counts as seen.
        assert outbox.seq_after_id(999) == 2
        assert [n.id for n, _ in outbox.released_after(outbox.seq_after_id(0))] == [urgent.id, held.id]
    finally:
        outbox.close()


def test_prune_keeps_pending_and_recent(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "n.sqlite3")
    try:
        done, _ = add(outbox, "done", channels=["a"])
        pending, _ = add(outbox, "pending", channels=["a"])
        outbox.mark_delivered(done.id, "a", T0)
        assert outbox.prune(T0 - timedelta(days=1)) == 0  # both are newer
        assert outbox.prune(T0 + timedelta(days=1)) == 1
        assert [s.notification.id for s in outbox.history(10, 0)] == [pending.id]
    finally:
        outbox.close()
