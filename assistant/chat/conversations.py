"""Conversation turns in SQLite under the data dir (WAL, synchronous=FULL: an answered turn survives kill -9)."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from assistant.core.errors import BadRequest
from assistant.core.sqlite_db import open_durable

_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    created_at TEXT NOT NULL,
    untrusted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS turns_by_conversation ON turns(conversation_id, id);
"""
# Stores made before turns carried provenance get the column (their turns count as trusted, as before).
_MIGRATIONS = {"untrusted": "ALTER TABLE turns ADD COLUMN untrusted INTEGER NOT NULL DEFAULT 0"}


@dataclass(frozen=True)
class Turn:
    id: int
    role: str
    content: str
    created_at: str
    untrusted: bool = False  # derived from untrusted text (a headline digest answered in chat, ...)


def new_conversation_id() -> str:
    return "conv-" + uuid.uuid4().hex[:16]


def check_conversation_id(value: str) -> str:
    if not _ID_RE.match(value):
        raise BadRequest(
            "conversation_id must be 1-64 characters of letters, digits, '_', '-', '.', ':'",
            code="invalid_conversation_id",
        )
    return value


class ConversationStore:
    def __init__(self, path: Path) -> None:
        self._db = open_durable(path, _SCHEMA)
        self._lock = threading.Lock()
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(turns)")}
        for column, statement in _MIGRATIONS.items():
            if column not in columns:
                self._db.execute(statement)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def exists(self, conversation_id: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM conversations WHERE id=?", (conversation_id,)).fetchone()
        return row is not None

    def turns(self, conversation_id: str) -> list[Turn]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, role, content, created_at, untrusted FROM turns WHERE conversation_id=? ORDER BY id",
                (conversation_id,),
            ).fetchall()
        return [Turn(r[0], r[1], r[2], r[3], bool(r[4])) for r in rows]

    def append(
        self, conversation_id: str, turns: Sequence[tuple[str, str] | tuple[str, str, bool]], at: datetime
    ) -> list[int]:
        """Append (role, content[, untrusted]) turns in one transaction; returns their ids."""
        stamp = at.isoformat()
        ids: list[int] = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO conversations(id, created_at, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET updated_at=excluded.updated_at",
                    (conversation_id, stamp, stamp),
                )
                for turn in turns:
                    role, content = turn[0], turn[1]
                    untrusted = len(turn) > 2 and bool(turn[2])
                    cur = self._db.execute(
                        "INSERT INTO turns(conversation_id, role, content, created_at, untrusted) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (conversation_id, role, content, stamp, int(untrusted)),
                    )
                    ids.append(int(cur.lastrowid or 0))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return ids

    def list(self, limit: int = 50, offset: int = 0) -> list[dict[str, object]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT c.id, c.created_at, c.updated_at, COUNT(t.id) FROM conversations c "
                "LEFT JOIN turns t ON t.conversation_id = c.id GROUP BY c.id "
                "ORDER BY c.updated_at DESC LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
        return [{"id": r[0], "created_at": r[1], "updated_at": r[2], "turns": r[3]} for r in rows]

    def delete(self, conversation_id: str) -> bool:
        with self._lock:
            cur = self._db.execute("DELETE FROM conversations WHERE id=?", (conversation_id,))
        return cur.rowcount > 0
