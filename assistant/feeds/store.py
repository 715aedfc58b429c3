"""Feeds, their entries and which entries each consumer (a digest...) has reported, in SQLite.

WAL with synchronous=FULL: a subscription or a "reported" mark that was acknowledged survives kill -9.
Times are stored as fixed-width UTC ISO strings so they sort as text.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from assistant.core.sqlite_db import open_durable
from assistant.feeds.models import Feed, FeedEntry, ParsedEntry, entry_key

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feeds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    url TEXT NOT NULL UNIQUE,
    title TEXT,                      -- given by the user; wins over feed_title
    feed_title TEXT,                 -- from the document
    etag TEXT,
    last_modified TEXT,
    last_error TEXT,
    last_fetched TEXT,
    error_count INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,            -- hash of feed URL + (id/guid | link | title+date)
    feed_id INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
    feed_url TEXT NOT NULL,
    title TEXT NOT NULL,
    link TEXT NOT NULL,
    summary TEXT NOT NULL,
    published TEXT,
    first_seen TEXT NOT NULL,
    sort_at TEXT NOT NULL            -- published, unless missing or in the future: then first_seen
);
CREATE INDEX IF NOT EXISTS entries_by_feed ON entries(feed_id, sort_at);
CREATE INDEX IF NOT EXISTS entries_by_time ON entries(sort_at);
CREATE TABLE IF NOT EXISTS reported (
    consumer TEXT NOT NULL,
    key TEXT NOT NULL,
    reported_at TEXT NOT NULL,
    PRIMARY KEY (consumer, key)
);
"""

_FEED_COLUMNS = """
    f.id, f.url, COALESCE(NULLIF(f.title, ''), NULLIF(f.feed_title, ''), f.url), f.last_fetched, f.last_error,
    f.etag, f.last_modified, (SELECT COUNT(*) FROM entries e WHERE e.feed_id = f.id), f.error_count
"""
_ENTRY_COLUMNS = """
    e.key, e.feed_id, e.feed_url, COALESCE(NULLIF(f.title, ''), NULLIF(f.feed_title, ''), f.url),
    e.title, e.link, e.summary, e.published
"""
FUTURE_SLACK = timedelta(days=1)


def to_text(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def from_text(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _feed(row: Sequence[Any]) -> Feed:
    return Feed(
        id=int(row[0]),
        url=str(row[1]),
        title=str(row[2]),
        last_fetched=from_text(row[3]),
        last_error=row[4],
        etag=row[5],
        last_modified=row[6],
        entry_count=int(row[7]),
        error_count=int(row[8]),
    )


def _entry(row: Sequence[Any]) -> FeedEntry:
    return FeedEntry(
        key=str(row[0]),
        feed_id=int(row[1]),
        feed_url=str(row[2]),
        feed_title=str(row[3]),
        title=str(row[4]),
        link=str(row[5]),
        summary=str(row[6]),
        published=from_text(row[7]),
    )


class FeedStore:
    def __init__(self, path: Path) -> None:
        self._db = open_durable(path, _SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- feeds -----------------------------------------------------------------------------------------------

    def add_feed(self, url: str, title: str | None, now: datetime) -> tuple[int, bool]:
        """(feed id, created). An existing URL keeps its row; a given title replaces the old one."""
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO feeds (url, title, created_at) VALUES (?, ?, ?)",
                (url, title, to_text(now)),
            )
            created = cur.rowcount == 1
            if not created and title:
                self._db.execute("UPDATE feeds SET title=? WHERE url=?", (title, url))
            row = self._db.execute("SELECT id FROM feeds WHERE url=?", (url,)).fetchone()
        return int(row[0]), created

    def delete_feed(self, feed_id: int) -> bool:
        with self._lock:
            return self._db.execute("DELETE FROM feeds WHERE id=?", (feed_id,)).rowcount == 1

    def get_feed(self, feed_id: int) -> Feed | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_FEED_COLUMNS} FROM feeds f WHERE f.id=?", (feed_id,)).fetchone()
        return _feed(row) if row else None

    def list_feeds(self) -> list[Feed]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_FEED_COLUMNS} FROM feeds f ORDER BY f.id").fetchall()
        return [_feed(r) for r in rows]

    # -- fetch outcomes --------------------------------------------------------------------------------------

    def record_failure(self, feed_id: int, now: datetime, error: str) -> None:
        """Nothing usable came back: keep the validators and the entries, note the error."""
        with self._lock:
            self._db.execute(
                "UPDATE feeds SET last_fetched=?, last_error=?, error_count=error_count+1 WHERE id=?",
                (to_text(now), error, feed_id),
            )

    def record_not_modified(self, feed_id: int, now: datetime) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE feeds SET last_fetched=?, last_error=NULL, error_count=0 WHERE id=?",
                (to_text(now), feed_id),
            )

    def record_entries(
        self,
        feed_id: int,
        feed_url: str,
        now: datetime,
        *,
        feed_title: str,
        entries: Iterable[ParsedEntry],
        problem: str | None,
        etag: str | None,
        last_modified: str | None,
        keep: int,
    ) -> int:
        """Store a parsed document in one transaction; returns how many entries were new."""
        now_text = to_text(now)
        new = 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                # Last first: undated entries tie on sort_at and then sort by rowid, so the document's first
                # (usually newest) entry must get the highest rowid.
                for entry in reversed(list(entries)):
                    new += self._upsert_entry(feed_id, feed_url, entry, now)
                self._db.execute(
                    "DELETE FROM entries WHERE feed_id=? AND key NOT IN "
                    "(SELECT key FROM entries WHERE feed_id=? ORDER BY sort_at DESC LIMIT ?)",
                    (feed_id, feed_id, keep),
                )
                counts_as_error = problem is not None and bool(problem) and not problem.startswith("warning:")
                self._db.execute(
                    "UPDATE feeds SET feed_title=COALESCE(NULLIF(?, ''), feed_title), etag=?,"
                    " last_modified=?, last_error=?, last_fetched=?,"
                    " error_count=CASE WHEN ? THEN error_count+1 ELSE 0 END WHERE id=?",
                    (feed_title, etag, last_modified, problem, now_text, counts_as_error, feed_id),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return new

    def _upsert_entry(self, feed_id: int, feed_url: str, entry: ParsedEntry, now: datetime) -> int:
        key = entry_key(feed_url, entry.identity)
        published = to_text(entry.published) if entry.published else None
        use_published = entry.published is not None and entry.published <= now + FUTURE_SLACK
        sort_at = published if use_published else to_text(now)
        cur = self._db.execute(
            "INSERT OR IGNORE INTO entries (key, feed_id, feed_url, title, link, summary, published,"
            " first_seen, sort_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key, feed_id, feed_url, entry.title, entry.link, entry.summary, published, to_text(now),
             sort_at),
        )
        if cur.rowcount == 1:
            return 1
        # Seen before: take corrected text, keep first_seen (and so the entry's place when it had no date).
        self._db.execute(
            "UPDATE entries SET title=?, link=?, summary=?, published=?,"
            " sort_at=CASE WHEN ? THEN ? ELSE sort_at END WHERE key=?",
            (entry.title, entry.link, entry.summary, published, use_published, sort_at, key),
        )
        return 0

    # -- entries ---------------------------------------------------------------------------------------------

    def entries(self, feed_id: int | None = None, limit: int = 10) -> list[FeedEntry]:
        where, params = ("WHERE e.feed_id=?", [feed_id]) if feed_id is not None else ("", [])
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_ENTRY_COLUMNS} FROM entries e JOIN feeds f ON f.id = e.feed_id {where}"
                " ORDER BY e.sort_at DESC, e.rowid DESC LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [_entry(r) for r in rows]

    def unreported(self, consumer: str, limit: int | None) -> list[FeedEntry]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_ENTRY_COLUMNS} FROM entries e JOIN feeds f ON f.id = e.feed_id"
                " WHERE NOT EXISTS (SELECT 1 FROM reported r WHERE r.consumer=? AND r.key=e.key)"
                " ORDER BY e.sort_at DESC, e.rowid DESC LIMIT ?",
                (consumer, -1 if limit is None else limit),
            ).fetchall()
        return [_entry(r) for r in rows]

    def mark_reported(self, consumer: str, keys: Iterable[str], now: datetime) -> None:
        rows = [(consumer, key, to_text(now)) for key in keys]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR IGNORE INTO reported (consumer, key, reported_at) VALUES (?, ?, ?)", rows
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
