"""Reminders on disk (SQLite through assistant.core.sqlite_db.open_durable: WAL, synchronous=FULL), so an
acknowledged reminder survives kill -9 and reboots.

A reminder is ``pending`` until it fires; a one-off is then ``fired`` (a snooze makes it ``pending`` again),
a recurring one ``pending`` at its next time; ``cancelled`` ends it. Firing is three steps: ``claim`` (state
``firing`` with a fresh ``fire_key``, committed), the notification (which carries that key), ``finish``.
A crash between the steps leaves ``firing``: at the next start the service looks for a notification with
the key and finishes, or sends it then: never twice, never lost. Every change is one conditional UPDATE
(``WHERE state = ...``), so a cancel and a firing of the same reminder cannot both win.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.core.sqlite_db import DurableStore

PENDING, FIRING, FIRED, CANCELLED = "pending", "firing", "fired", "cancelled"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reminders (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    what TEXT NOT NULL,
    due_at REAL NOT NULL,
    schedule TEXT,
    zone TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    created_at REAL NOT NULL,
    source TEXT NOT NULL,
    said TEXT NOT NULL DEFAULT '',
    duration_s INTEGER,
    fire_key TEXT,
    firing_at REAL,
    fired_at REAL,
    fire_count INTEGER NOT NULL DEFAULT 0,
    notification_id INTEGER,
    pass_quiet INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS reminders_due ON reminders(state, due_at);
"""
_COLS = ("id, kind, what, due_at, schedule, zone, state, created_at, source, said, duration_s, fire_key, firing_at, "
         "fired_at, fire_count, notification_id, pass_quiet")  # fmt: skip


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


@dataclass(frozen=True)
class Reminder:
    id: str
    kind: str  # reminder | timer | alarm
    what: str
    due_at: datetime  # the next (or last, once fired) fire time, UTC
    schedule: str | None
    zone: str
    state: str
    created_at: datetime
    source: str  # chat | api | cli
    said: str  # the words it was made from
    duration_s: int | None
    fire_key: str | None
    firing_at: datetime | None
    fired_at: datetime | None
    fire_count: int
    notification_id: int | None
    pass_quiet: bool = False  # a reminder set for a time inside quiet hours on purpose

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Reminder:
        (id_, kind, what, due, schedule, zone, state, created, source, said, duration, key, firing, fired,
         count, nid, pass_quiet) = row  # fmt: skip
        return cls(id_, kind, what, _dt(due) or datetime.now(UTC), schedule, zone, state, _dt(created) or
                   datetime.now(UTC), source, said, duration, key, _dt(firing), _dt(fired), count, nid,
                   bool(pass_quiet))  # fmt: skip

    @property
    def urgent(self) -> bool:
        """Timers and alarms pass quiet hours; a reminder waits for them to end unless it was set inside
        them on purpose."""
        return self.kind != "reminder" or self.pass_quiet

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "kind": self.kind, "what": self.what, "due_at": self.due_at.isoformat(),
            "schedule": self.schedule, "zone": self.zone, "state": self.state,
            "created_at": self.created_at.isoformat(), "source": self.source, "said": self.said,
            "duration_s": self.duration_s, "fire_count": self.fire_count,
            "fired_at": self.fired_at.isoformat() if self.fired_at else None,
            "notification_id": self.notification_id,
        }  # fmt: skip


class ReminderStore(DurableStore):
    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)

    def _one(self, where: str, args: tuple[Any, ...]) -> Reminder | None:
        rows = self._select(where, args)
        return rows[0] if rows else None

    def _select(self, tail: str, args: tuple[Any, ...] = ()) -> list[Reminder]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLS} FROM reminders {tail}", args).fetchall()
        return [Reminder.from_row(r) for r in rows]

    def add(
        self, *, kind: str, what: str, due_at: datetime, schedule: str | None, zone: str, created_at: datetime,
        source: str, said: str = "", duration_s: int | None = None, pass_quiet: bool = False,
    ) -> Reminder:  # fmt: skip
        rid = "r" + secrets.token_hex(4)
        with self._write() as db:
            db.execute(
                "INSERT INTO reminders (id, kind, what, due_at, schedule, zone, created_at, source, said, duration_s,"
                " pass_quiet) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (rid, kind, what, due_at.timestamp(), schedule, zone, created_at.timestamp(), source, said,
                 duration_s, int(pass_quiet)),
            )  # fmt: skip
        found = self.get(rid)
        assert found is not None
        return found

    def get(self, rid: str) -> Reminder | None:
        return self._one("WHERE id=?", (rid,))

    def active(self) -> list[Reminder]:
        """Pending (and firing) reminders, soonest first."""
        return self._select("WHERE state IN ('pending', 'firing') ORDER BY due_at")

    def all(self, limit: int = 200) -> list[Reminder]:
        return self._select("ORDER BY created_at DESC LIMIT ?", (limit,))

    def due(self, now: datetime) -> list[Reminder]:
        return self._select("WHERE state='pending' AND due_at<=? ORDER BY due_at", (now.timestamp(),))

    def firing(self) -> list[Reminder]:
        return self._select("WHERE state='firing' ORDER BY due_at")

    def last_fired(self) -> Reminder | None:
        return self._one("WHERE fired_at IS NOT NULL ORDER BY fired_at DESC LIMIT 1", ())

    def next_due(self) -> datetime | None:
        with self._lock:
            row = self._db.execute("SELECT MIN(due_at) FROM reminders WHERE state='pending'").fetchone()
        return _dt(row[0]) if row and row[0] is not None else None

    # -- changes: each is one conditional UPDATE -------------------------------------------------------

    def claim(self, rid: str, now: datetime) -> str | None:
        """Mark a due pending reminder as firing; its fresh fire key, or None when it is not pending any more."""
        key = f"{rid}:{secrets.token_hex(6)}"
        with self._write() as db:
            cur = db.execute(
                "UPDATE reminders SET state='firing', fire_key=?, firing_at=? "
                "WHERE id=? AND state='pending' AND due_at<=?",
                (key, now.timestamp(), rid, now.timestamp()),
            )
        return key if cur.rowcount == 1 else None

    def finish(
        self, rid: str, key: str, notification_id: int, at: datetime, next_due: datetime | None
    ) -> bool:
        """The notification with ``key`` is in the outbox: a one-off is fired, a recurring one pending again."""
        with self._write() as db:
            cur = db.execute(
                "UPDATE reminders SET state=?, due_at=COALESCE(?, due_at), fired_at=?, fire_count=fire_count+1, "
                "notification_id=? WHERE id=? AND state='firing' AND fire_key=?",
                (PENDING if next_due else FIRED, next_due.timestamp() if next_due else None, at.timestamp(),
                 notification_id, rid, key),
            )  # fmt: skip
        return cur.rowcount == 1

    def cancel(self, rid: str) -> bool:
        with self._write() as db:
            cur = db.execute("UPDATE reminders SET state='cancelled' WHERE id=? AND state='pending'", (rid,))
        return cur.rowcount == 1

    def reschedule(self, rid: str, due_at: datetime, *, states: tuple[str, ...] = (PENDING,)) -> bool:
        """Move a reminder in one of ``states`` to ``due_at`` (pending again): "move", "snooze"."""
        marks = ",".join("?" * len(states))
        with self._write() as db:
            cur = db.execute(
                f"UPDATE reminders SET state='pending', due_at=? WHERE id=? AND state IN ({marks})",
                (due_at.timestamp(), rid, *states),
            )
        return cur.rowcount == 1

    def update(self, rid: str, *, what: str | None = None) -> bool:
        with self._write() as db:
            cur = db.execute(
                "UPDATE reminders SET what=COALESCE(?, what) WHERE id=? AND state='pending'", (what, rid)
            )
        return cur.rowcount == 1

    def delete(self, rid: str) -> bool:
        """Gone for good (the API's DELETE); a reminder being fired is finished first by the service."""
        with self._write() as db:
            cur = db.execute("DELETE FROM reminders WHERE id=? AND state!='firing'", (rid,))
        return cur.rowcount == 1
