"""The run log: one row per run of a schedule (running / ok / error / missed) in the schedules database,
for ``assistant schedule runs`` and the last run shown with each schedule."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from contextlib import closing
from dataclasses import fields
from datetime import UTC
from pathlib import Path
from typing import Any

from assistant.core.clock import Clock
from assistant.core.storage_errors import StoreCorrupt, is_corruption
from assistant.skillkit.schedules import RunRecord

_FIELDS = [f.name for f in fields(RunRecord)]  # the table's columns, in the record's order
_COLUMNS = ", ".join(_FIELDS)


def open_run_log(path: Path, clock: Clock) -> RunLog:
    """The runs table, after a check of the whole schedules database (jobs and runs: small, so the check
    is quick). Damage raises StoreCorrupt saying what to do, instead of a crash at every start."""
    try:
        if path.exists():
            with closing(sqlite3.connect(path)) as db:
                verdict = db.execute("PRAGMA quick_check").fetchone()[0]
            if verdict != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed: {verdict}")
        return RunLog(path, clock)
    except sqlite3.DatabaseError as exc:
        if not is_corruption(exc):
            raise
        raise StoreCorrupt(
            f"the schedule store {path} is damaged ({exc}). Stop the daemon and restore it from a backup "
            f"(assistant restore FILE), or move it aside (mv {path} {path}.broken) and start again with no "
            "schedules, then add them again (assistant schedule add ...)"
        ) from exc


class RunLog:
    """One row per run (ok / error / missed) in the schedules database, for `assistant schedule list`.
    Thread-safe: runs finish in APScheduler's pool while the API reads."""

    def __init__(self, path: Path, clock: Clock) -> None:
        self._clock = clock
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA busy_timeout = 5000")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS schedule_runs (id INTEGER PRIMARY KEY, schedule_id TEXT NOT NULL, "
            "skill TEXT NOT NULL, trigger TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT, "
            "status TEXT NOT NULL, title TEXT, notified INTEGER, error TEXT)"
        )
        self._db.execute(
            "CREATE INDEX IF NOT EXISTS schedule_runs_by_schedule ON schedule_runs (schedule_id, id)"
        )

    def start(self, schedule_id: str, skill: str, trigger: str) -> int:
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO schedule_runs (schedule_id, skill, trigger, started_at, status) "
                "VALUES (?, ?, ?, ?, 'running')",
                (schedule_id, skill, trigger, self._now()),
            )
            return int(cur.lastrowid or 0)

    def finish(
        self, run_id: int, status: str, *, title: str | None = None, notified: bool | None = None,
        error: str | None = None,
    ) -> None:  # fmt: skip
        with self._lock:
            self._db.execute(
                "UPDATE schedule_runs SET finished_at = ?, status = ?, title = ?, notified = ?, error = ? "
                "WHERE id = ?",
                (self._now(), status, title, None if notified is None else int(notified), error, run_id),
            )

    def interrupted(self) -> list[RunRecord]:
        """Runs still 'running': at start, those a daemon left behind when it died during them."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM schedule_runs WHERE status = 'running' ORDER BY id"
            ).fetchall()
        return [_record(row) for row in rows]

    def recent(self, schedule_id: str | None, limit: int) -> list[RunRecord]:
        where, params = ("WHERE schedule_id = ?", (schedule_id,)) if schedule_id else ("", ())
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM schedule_runs {where} ORDER BY id DESC LIMIT ?", (*params, limit)
            ).fetchall()
        return [_record(row) for row in rows]

    def _now(self) -> str:
        return self._clock.now().astimezone(UTC).isoformat(timespec="seconds")

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _record(row: Sequence[Any]) -> RunRecord:
    values = dict(zip(_FIELDS, row, strict=True))
    notified = values.pop("notified")
    return RunRecord(**values, notified=None if notified is None else bool(notified))
