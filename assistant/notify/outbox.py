"""The notification outbox: SQLite under the data dir (WAL, synchronous=FULL).

A notification and one delivery row per channel are committed in one transaction before notify() returns,
so nothing acknowledged is lost on kill -9. Each channel marks its row delivered only after the receiver
accepted it (at-least-once; receivers may dedupe on the notification id).

Quiet hours: a held notification has ``release_at`` in the future and no ``released_seq`` yet. Releasing
assigns the next ``released_seq``; the SSE stream is ordered by it, so a notification released late
(after newer urgent ones) is still replayed to a client that reconnects with the last id it saw.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.core.sqlite_db import DurableStore
from assistant.notify.models import ChannelState, Notification, NotificationStatus

_SCHEMA = """
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    source TEXT NOT NULL,
    urgent INTEGER NOT NULL,
    data TEXT,
    created_at TEXT NOT NULL,
    release_at REAL NOT NULL,
    released_seq INTEGER UNIQUE
);
CREATE INDEX IF NOT EXISTS notifications_held ON notifications(release_at) WHERE released_seq IS NULL;
CREATE TABLE IF NOT EXISTS deliveries (
    notification_id INTEGER NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    last_attempt_at TEXT,
    delivered_at TEXT,
    PRIMARY KEY (notification_id, channel)
);
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries(channel, status, notification_id);
"""

_COLS = "n.id, n.title, n.body, n.source, n.urgent, n.data, n.created_at"


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds")


def _row_to_notification(row: tuple[Any, ...]) -> Notification:
    id_, title, body, source, urgent, data, created_at = row[:7]
    return Notification(
        id_, title, body, source, bool(urgent), json.loads(data) if data else None, created_at
    )


class Outbox(DurableStore):
    def __init__(self, path: Path) -> None:
        super().__init__(path, _SCHEMA)

    def _next_seq(self, db: sqlite3.Connection) -> int:
        return int(db.execute("SELECT COALESCE(MAX(released_seq), 0) + 1 FROM notifications").fetchone()[0])

    def add(
        self,
        *,
        title: str,
        body: str,
        source: str,
        urgent: bool,
        data: dict[str, Any] | None,
        created_at: datetime,
        release_at: datetime,
        channels: list[str],
    ) -> tuple[Notification, int | None]:
        """Store a notification and its pending deliveries. Returns it and its SSE sequence number, which
        is None when it is held (release_at after created_at)."""
        created = iso(created_at)
        held = release_at > created_at
        data_text = json.dumps(data, ensure_ascii=False) if data is not None else None
        with self._write() as db:
            seq = None if held else self._next_seq(db)
            cur = db.execute(
                "INSERT INTO notifications (title, body, source, urgent, data, created_at, release_at, "
                "released_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (title, body, source, int(urgent), data_text, created, release_at.timestamp(), seq),
            )
            nid = int(cur.lastrowid or 0)
            db.executemany(
                "INSERT INTO deliveries (notification_id, channel) VALUES (?, ?)",
                [(nid, c) for c in channels],
            )
        return Notification(nid, title, body, source, urgent, data, created), seq

    def release_due(self, now: datetime) -> list[tuple[Notification, int]]:
        """Release held notifications whose quiet hours are over, oldest first, as (notification, seq)."""
        with self._write() as db:
            rows = db.execute(
                f"SELECT {_COLS} FROM notifications n WHERE released_seq IS NULL AND release_at <= ? "
                "ORDER BY id",
                (now.timestamp(),),
            ).fetchall()
            if not rows:
                return []
            seq = self._next_seq(db)
            out = []
            for row in rows:
                db.execute("UPDATE notifications SET released_seq=? WHERE id=?", (seq, row[0]))
                out.append((_row_to_notification(row), seq))
                seq += 1
        return out

    def next_release(self) -> datetime | None:
        with self._lock:
            row = self._db.execute(
                "SELECT MIN(release_at) FROM notifications WHERE released_seq IS NULL"
            ).fetchone()
        return datetime.fromtimestamp(row[0], UTC) if row and row[0] is not None else None

    def due(self, channel: str, now: datetime, limit: int = 100) -> list[Notification]:
        """Released notifications the channel has not delivered yet, oldest first."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLS} FROM deliveries d JOIN notifications n ON n.id = d.notification_id "
                "WHERE d.channel=? AND d.status='pending' AND n.release_at <= ? "
                "ORDER BY n.id LIMIT ?",
                (channel, now.timestamp(), limit),
            ).fetchall()
        return [_row_to_notification(r) for r in rows]

    def mark_delivered(self, notification_id: int, channel: str, at: datetime) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE deliveries SET status='delivered', attempts=attempts+1, last_error=NULL, "
                "last_attempt_at=?, delivered_at=? WHERE notification_id=? AND channel=?",
                (iso(at), iso(at), notification_id, channel),
            )

    def mark_attempt_failed(
        self,
        notification_id: int,
        channel: str,
        at: datetime,
        error: str,
        *,
        permanent: bool,
        max_attempts: int,
    ) -> tuple[int, bool]:
        """Record a failed attempt. The row is failed for good when ``permanent`` or when it reached
        ``max_attempts`` (0 = no limit). Returns (attempts so far, gave up)."""
        with self._write() as db:
            row = db.execute(
                "SELECT attempts FROM deliveries WHERE notification_id=? AND channel=?",
                (notification_id, channel),
            ).fetchone()
            attempts = (int(row[0]) if row else 0) + 1
            give_up = permanent or (max_attempts > 0 and attempts >= max_attempts)
            db.execute(
                "UPDATE deliveries SET status=?, attempts=?, last_error=?, last_attempt_at=? "
                "WHERE notification_id=? AND channel=?",
                (
                    "failed" if give_up else "pending",
                    attempts,
                    error[:500],
                    iso(at),
                    notification_id,
                    channel,
                ),
            )
        return attempts, give_up

    def pending_count(self, channel: str | None = None) -> int:
        sql = "SELECT COUNT(*) FROM deliveries WHERE status='pending'"
        args: tuple[Any, ...] = ()
        if channel is not None:
            sql += " AND channel=?"
            args = (channel,)
        with self._lock:
            return int(self._db.execute(sql, args).fetchone()[0])

    # --- reading -------------------------------------------------------------------------------------------

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM notifications").fetchone()[0])

    def get(self, notification_id: int) -> NotificationStatus | None:
        rows = self._statuses("WHERE n.id=?", (notification_id,))
        return rows[0] if rows else None

    def history(self, limit: int, offset: int) -> list[NotificationStatus]:
        """Newest first."""
        return self._statuses("ORDER BY n.id DESC LIMIT ? OFFSET ?", (limit, offset))

    def _statuses(self, tail: str, args: tuple[Any, ...]) -> list[NotificationStatus]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLS}, n.release_at, n.released_seq FROM notifications n {tail}", args
            ).fetchall()
            ids = [r[0] for r in rows]
            marks = ",".join("?" * len(ids))
            deliveries = (
                self._db.execute(
                    "SELECT notification_id, channel, status, attempts, last_error, last_attempt_at, "
                    "delivered_at "
                    f"FROM deliveries WHERE notification_id IN ({marks}) ORDER BY channel",
                    ids,
                ).fetchall()
                if ids
                else []
            )
        by_id: dict[int, list[ChannelState]] = {}
        for d in deliveries:
            by_id.setdefault(d[0], []).append(ChannelState(*d[1:]))
        out = []
        for r in rows:
            held = None if r[8] is not None else iso(datetime.fromtimestamp(r[7], UTC))
            out.append(NotificationStatus(_row_to_notification(r), held, by_id.get(r[0], [])))
        return out

    def seq_after_id(self, last_id: int) -> int:
        """The SSE position just after the notification a client saw last.

        When that id is unknown (never existed or pruned), the client has seen everything released up to it.
        """
        with self._lock:
            row = self._db.execute("SELECT released_seq FROM notifications WHERE id=?", (last_id,)).fetchone()
            if row is not None and row[0] is not None:
                return int(row[0])
            row = self._db.execute(
                "SELECT COALESCE(MAX(released_seq), 0) FROM notifications "
                "WHERE id<=? AND released_seq IS NOT NULL",
                (last_id,),
            ).fetchone()
        return int(row[0])

    def released_after(self, seq: int, limit: int = 200) -> list[tuple[Notification, int]]:
        """Released notifications with a sequence number above ``seq``, in release order."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLS}, n.released_seq FROM notifications n "
                "WHERE n.released_seq > ? ORDER BY n.released_seq LIMIT ?",
                (seq, limit),
            ).fetchall()
        return [(_row_to_notification(r), int(r[7])) for r in rows]

    def last_seq(self) -> int:
        with self._lock:
            return int(
                self._db.execute("SELECT COALESCE(MAX(released_seq), 0) FROM notifications").fetchone()[0]
            )

    def prune(self, before: datetime) -> int:
        """Delete notifications created before ``before`` whose deliveries are all finished."""
        with self._write() as db:
            cur = db.execute(
                "DELETE FROM notifications WHERE created_at < ? AND released_seq IS NOT NULL AND NOT EXISTS "
                "(SELECT 1 FROM deliveries d "
                "WHERE d.notification_id = notifications.id AND d.status='pending')",
                (iso(before),),
            )
        return cur.rowcount
