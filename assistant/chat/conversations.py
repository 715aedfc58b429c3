"""Conversation turns in SQLite under the data dir (WAL, synchronous=FULL: an answered turn survives kill -9)."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import unicodedata
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
    updated_at TEXT NOT NULL,
    tail_hash TEXT,
    persona TEXT
);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    created_at TEXT NOT NULL,
    untrusted INTEGER NOT NULL DEFAULT 0,
    recalled TEXT,
    memory_pending INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS turns_by_conversation ON turns(conversation_id, id);
"""
# Stores made before turns carried provenance get the column (their turns count as trusted, as before);
# before personas and ratings, the persona (None: the default) and the recalled memory ids of an answer.
_MIGRATIONS = {
    ("turns", "untrusted"): "ALTER TABLE turns ADD COLUMN untrusted INTEGER NOT NULL DEFAULT 0",
    ("conversations", "tail_hash"): "ALTER TABLE conversations ADD COLUMN tail_hash TEXT",
    ("conversations", "persona"): "ALTER TABLE conversations ADD COLUMN persona TEXT",
    ("turns", "recalled"): "ALTER TABLE turns ADD COLUMN recalled TEXT",
    ("turns", "memory_pending"): "ALTER TABLE turns ADD COLUMN memory_pending INTEGER NOT NULL DEFAULT 0",
}
_INDEXES = "CREATE INDEX IF NOT EXISTS conversations_by_tail ON conversations(tail_hash)"


_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w+")
HASH_VERSION = 2  # PRAGMA user_version: 2 = chain hashes of normalised text (1 and 0: of the exact bytes)
RESEMBLES = 0.6  # the share of words two texts must have in common to be taken for the same text
UNTRUSTED_LOOKBACK = 2000  # the newest untrusted answers a resent assistant turn is compared with


def normalized(text: str) -> str:
    """Text as clients may hand it back: Unicode NFKC, whitespace runs as one space, no outer whitespace."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def chain_hash(turns: Sequence[tuple[str, str]], start: str = "") -> str:
    """A hash of a sequence of (role, content) turns, extendable one turn at a time: the hash of a
    conversation's stored turns equals the hash of the same turns resent by a client, whatever the client
    did to their whitespace or Unicode form."""
    h = start
    for role, content in turns:
        text = normalized(content)
        h = hashlib.sha256(f"{h}\x00{role}\x00{text}".encode("utf-8", "surrogatepass")).hexdigest()
    return h


def _words(text: str) -> set[str]:
    return set(_WORD.findall(normalized(text).casefold()))


def resembles(a: set[str], b: set[str]) -> bool:
    """Two texts' word sets overlap so much that one is an edit of the other."""
    if not a or not b:
        return False
    return len(a & b) / min(len(a), len(b)) >= RESEMBLES and len(a & b) / max(len(a), len(b)) >= RESEMBLES / 2


@dataclass(frozen=True)
class Turn:
    id: int
    role: str
    content: str
    created_at: str
    untrusted: bool = False  # derived from untrusted text (a headline digest answered in chat, ...)
    recalled: tuple[str, ...] = ()  # of an answer: the ids of the memories recalled into its prompt, best first


def _turn(row: Sequence[object]) -> Turn:
    recalled = tuple(json.loads(str(row[5]))) if row[5] else ()
    return Turn(int(str(row[0])), str(row[1]), str(row[2]), str(row[3]), bool(row[4]), recalled)


_TURN_COLUMNS = "id, role, content, created_at, untrusted, recalled"


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
        for (table, column), statement in _MIGRATIONS.items():
            if column not in {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}:
                self._db.execute(statement)
        self._db.execute(_INDEXES)
        if int(self._db.execute("PRAGMA user_version").fetchone()[0]) < HASH_VERSION:
            self._rehash()

    def _rehash(self) -> None:
        """Recompute every conversation's chain hash with today's normalisation (once, after an upgrade)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                ids = [str(r[0]) for r in self._db.execute("SELECT id FROM conversations")]
                for cid in ids:
                    rows = self._db.execute(
                        "SELECT role, content FROM turns WHERE conversation_id=? ORDER BY id", (cid,)
                    ).fetchall()
                    tail = chain_hash([(str(r[0]), str(r[1])) for r in rows]) if rows else None
                    self._db.execute("UPDATE conversations SET tail_hash=? WHERE id=?", (tail, cid))
                self._db.execute(f"PRAGMA user_version={HASH_VERSION}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def resembles_untrusted(self, text: str) -> bool:
        """``text`` is, or is an edit of, an answer stored as untrusted (one of the newest
        UNTRUSTED_LOOKBACK): a client resending it in a history must not make it trusted."""
        words = _words(text)
        if not words:
            return False
        with self._lock:
            rows = self._db.execute(
                "SELECT content FROM turns WHERE untrusted=1 AND role='assistant' ORDER BY id DESC LIMIT ?",
                (UNTRUSTED_LOOKBACK,),
            ).fetchall()
        return any(resembles(words, _words(str(r[0]))) for r in rows)

    def find_by_history(self, turns: Sequence[tuple[str, str]]) -> str | None:
        """The conversation whose stored turns are exactly ``turns`` (a client resending the whole history
        with no conversation id), or None. The newest such conversation wins."""
        if not turns:
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT id FROM conversations WHERE tail_hash=? ORDER BY updated_at DESC LIMIT 1",
                (chain_hash(turns),),
            ).fetchone()
        return str(row[0]) if row else None

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
                f"SELECT {_TURN_COLUMNS} FROM turns WHERE conversation_id=? ORDER BY id", (conversation_id,)
            ).fetchall()
        return [_turn(r) for r in rows]

    def persona(self, conversation_id: str) -> str | None:
        """The persona chosen for the conversation (None: the default, or no such conversation)."""
        with self._lock:
            row = self._db.execute("SELECT persona FROM conversations WHERE id=?", (conversation_id,)).fetchone()
        return str(row[0]) if row and row[0] else None

    def answer(self, conversation_id: str, turn_id: int | None = None) -> tuple[Turn, str] | None:
        """An answer of the conversation (turn ``turn_id``, or the newest answer) and the question it
        answered (the user's turn before it), or None when there is no such answer."""
        with self._lock:
            if turn_id is None:
                row = self._db.execute(
                    f"SELECT {_TURN_COLUMNS} FROM turns WHERE conversation_id=? AND role='assistant' "
                    "ORDER BY id DESC LIMIT 1",
                    (conversation_id,),
                ).fetchone()
            else:
                row = self._db.execute(
                    f"SELECT {_TURN_COLUMNS} FROM turns WHERE conversation_id=? AND id=? AND role='assistant'",
                    (conversation_id, turn_id),
                ).fetchone()
            if row is None:
                return None
            question = self._db.execute(
                "SELECT content FROM turns WHERE conversation_id=? AND id<? AND role='user' ORDER BY id DESC LIMIT 1",
                (conversation_id, row[0]),
            ).fetchone()
        return _turn(row), str(question[0]) if question else ""

    def append(
        self,
        conversation_id: str,
        turns: Sequence[tuple[str, str] | tuple[str, str, bool]],
        at: datetime,
        *,
        persona: str | None = None,
        recalled: Sequence[str] = (),
        remember: bool = False,
    ) -> list[int]:
        """Append (role, content[, untrusted]) turns in one transaction; returns their ids. ``recalled`` (memory
        ids) is stored with the answers among them; ``persona``, when given, becomes the conversation's.
        ``remember`` marks the turns pending for memory until ``memory_done`` (killed in between: the next
        start gives them to memory)."""
        stamp = at.isoformat()
        recalled_json = json.dumps(list(recalled)) if recalled else None
        ids: list[int] = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT tail_hash FROM conversations WHERE id=?", (conversation_id,)).fetchone()
                if row is None or row[0] is None:  # new, or stored before hashes: hash what is there
                    stored = self._db.execute(
                        "SELECT role, content FROM turns WHERE conversation_id=? ORDER BY id", (conversation_id,)
                    ).fetchall()
                    start = chain_hash([(r[0], r[1]) for r in stored])
                else:
                    start = row[0]
                tail = chain_hash([(t[0], t[1]) for t in turns], start)
                self._db.execute(
                    "INSERT INTO conversations(id, created_at, updated_at, tail_hash) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET updated_at=excluded.updated_at, tail_hash=excluded.tail_hash",
                    (conversation_id, stamp, stamp, tail),
                )
                if persona is not None:
                    self._db.execute("UPDATE conversations SET persona=? WHERE id=?", (persona, conversation_id))
                for turn in turns:
                    role, content = turn[0], turn[1]
                    untrusted = len(turn) > 2 and bool(turn[2])
                    cur = self._db.execute(
                        "INSERT INTO turns(conversation_id, role, content, created_at, untrusted, recalled, "
                        "memory_pending) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (conversation_id, role, content, stamp, int(untrusted),
                         recalled_json if role == "assistant" else None, int(remember)),
                    )  # fmt: skip
                    ids.append(int(cur.lastrowid or 0))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return ids

    def pending_memory(self, limit: int = 500) -> list[tuple[str, Turn]]:
        """(conversation id, turn) of turns stored with ``remember`` whose memory copy is not confirmed."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT conversation_id, {_TURN_COLUMNS} FROM turns WHERE memory_pending = 1 ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
        return [(str(r[0]), _turn(r[1:])) for r in rows]

    def memory_done(self, ids: Sequence[int]) -> None:
        """Memory has these turns (or chose not to keep them): they are no longer pending."""
        with self._lock:
            self._db.executemany("UPDATE turns SET memory_pending = 0 WHERE id = ?", [(i,) for i in ids])

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
