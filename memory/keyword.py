"""The durable memory record and its BM25 keyword index: SQLite with an FTS5 table (Porter stemming).

This database is the journal of truth: a memory is written here first (WAL, synchronous=FULL) and
marked ``embedded`` once its vectors are in Chroma; deletes are queued in ``pending_deletes`` until
Chroma has dropped them. On start, ``MemoryService`` replays both, so the two indexes agree after a
kill -9 at any point. Why FTS5 and not bm25s: see docs/memory.md (same quality, incremental writes).
"""

from __future__ import annotations

import builtins
import contextlib
import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS memories (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    text TEXT NOT NULL,
    source TEXT NOT NULL,
    conversation_id TEXT,
    created_at REAL NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    chunks INTEGER NOT NULL DEFAULT 0,
    embedded INTEGER NOT NULL DEFAULT 0,
    context TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS memories_by_created ON memories(created_at);
CREATE INDEX IF NOT EXISTS memories_by_conversation ON memories(conversation_id, created_at);
CREATE INDEX IF NOT EXISTS memories_pending ON memories(embedded) WHERE embedded = 0;
CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5(
    text, context, content='memories', content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS memories_ai AFTER INSERT ON memories BEGIN
    INSERT INTO memories_fts(rowid, text, context) VALUES (new.rowid, new.text, new.context);
END;
CREATE TRIGGER IF NOT EXISTS memories_ad AFTER DELETE ON memories BEGIN
    INSERT INTO memories_fts(memories_fts, rowid, text, context) VALUES ('delete', old.rowid, old.text, old.context);
END;
CREATE TABLE IF NOT EXISTS pending_deletes (id TEXT PRIMARY KEY);
"""

# Stores made before the context column: the column is added and the FTS5 table rebuilt over both columns.
_MIGRATE_CONTEXT = """
ALTER TABLE memories ADD COLUMN context TEXT NOT NULL DEFAULT '';
DROP TRIGGER IF EXISTS memories_ai;
DROP TRIGGER IF EXISTS memories_ad;
DROP TABLE IF EXISTS memories_fts;
"""
_REBUILD_FTS = "INSERT INTO memories_fts(memories_fts) VALUES ('rebuild');\n"

_WORD_RE = re.compile(r"\w+", re.UNICODE)
CONTEXT_WEIGHT = 0.5  # tuned on three LoCoMo conversations (docs/memory.md)
# A query term held by more than MAX_DF of the memories, and by more than MIN_DF_ROWS of them, is left out
# of the keyword search (the rarest term of a query is always kept). Such a term has a small BM25 weight and
# the longest posting list, which FTS5 reads whole for every query (bm25 counts its rows): at 100k
# memories, most of them turns indexed with the turns before them, the common terms were most of a search's
# time. Below MIN_DF_ROWS a term costs little, so a small memory keeps every term (docs/memory.md).
MAX_DF = 0.1
MIN_DF_ROWS = 5000
STATS_TTL_S = 600.0  # how long a counted document frequency (and the number of memories) is reused


@dataclass(frozen=True)
class MemoryRecord:
    id: str
    text: str
    source: str
    conversation_id: str | None
    created_at: float  # unix seconds, UTC
    metadata: dict[str, Any] = field(default_factory=dict)
    # Indexed for BM25 (a second, lower-weighted column), never returned: for a conversation turn the
    # turns before it and the day it was said (memory.context). Empty for other memories.
    context: str = ""


@dataclass(frozen=True)
class Filters:
    """What a search may return. ``where`` matches user metadata keys exactly (e.g. a user or group id)."""

    sources: tuple[str, ...] = ()
    source_prefix: str | None = None  # e.g. "skill:" or "feed:"
    conversation_id: str | None = None
    since: float | None = None
    until: float | None = None
    where: tuple[tuple[str, str | int | float | bool], ...] = ()

    @property
    def empty(self) -> bool:
        return self == Filters()


NO_FILTERS = Filters()


def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    return frozenset(STOPWORDS_EN_PLUS)  # NLTK list: chat questions are full of "my", "what", "where"


def query_terms(query: str, stopwords: frozenset[str]) -> list[str]:
    words = [w.lower() for w in _WORD_RE.findall(query)]
    terms = [w for w in words if w not in stopwords] or words
    return list(dict.fromkeys(terms))[:64]


def match_expression(query: str | Sequence[str], stopwords: frozenset[str] = frozenset()) -> str | None:
    """An FTS5 MATCH expression: the query's words, each quoted (no operator injection), OR-ed."""
    terms = query_terms(query, stopwords) if isinstance(query, str) else list(query)
    if not terms:
        return None
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in terms)


def _needs_context_column(path: Path) -> bool:
    if not path.exists():
        return False
    db = sqlite3.connect(path)
    try:
        cols = {r[1] for r in db.execute("PRAGMA table_info(memories)")}
    finally:
        db.close()
    return bool(cols) and "context" not in cols


class KeywordIndex:
    """Thread-safe (one connection, one lock): the daemon adds from request and job threads."""

    def __init__(self, path: Path) -> None:
        from assistant.core.sqlite_db import open_durable

        self.path = path
        # One transaction: column added, FTS5 table made anew and rebuilt, or nothing (a crash mid-way).
        migrate = _needs_context_column(path)
        self._db = open_durable(path, _MIGRATE_CONTEXT + _SCHEMA + _REBUILD_FTS if migrate else _SCHEMA)
        self._lock = threading.Lock()
        self._readers: list[sqlite3.Connection] = []  # every read connection opened
        self._idle: list[sqlite3.Connection] = []  # those not in use
        self._stop = _stopwords()
        self._df: dict[str, tuple[int, float]] = {}  # term -> (memories that hold it, when counted)
        self._rows: tuple[int, float] = (0, -STATS_TTL_S)  # (memories, when counted)

    @contextlib.contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection for one query: searches run in parallel (WAL) and never wait for a write's
        fsync; they see every committed write. Connections are pooled, not kept per thread: request threads
        come and go, and a connection per thread would keep one open file for every thread there ever was."""
        with self._lock:
            db = self._idle.pop() if self._idle else None
        if db is None:
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA query_only=1")
            with self._lock:
                self._readers.append(db)
        try:
            yield db
        finally:
            with self._lock:
                self._idle.append(db)

    def close(self) -> None:
        with self._lock:
            self._db.close()
            for db in self._readers:
                db.close()
            self._readers.clear()
            self._idle.clear()

    # -- writes ---------------------------------------------------------------------------------

    def insert(self, records: Sequence[MemoryRecord], chunks: Sequence[int]) -> None:
        """Commit the records (not yet embedded) in one durable transaction."""
        rows = [
            (r.id, r.text, r.source, r.conversation_id, r.created_at, json.dumps(r.metadata), n, r.context)
            for r, n in zip(records, chunks, strict=True)
        ]
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT INTO memories(id, text, source, conversation_id, created_at, metadata, chunks, context) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def mark_embedded(self, ids: Iterable[str]) -> None:
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("UPDATE memories SET embedded = 1 WHERE id = ?", [(i,) for i in ids])

    def delete(self, memory_id: str) -> bool:
        """Remove the record and queue the id for Chroma, atomically. False when there is none."""
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            cur = self._db.execute("DELETE FROM memories WHERE id = ?", (memory_id,))
            if cur.rowcount == 0:
                return False
            self._db.execute("INSERT OR IGNORE INTO pending_deletes(id) VALUES (?)", (memory_id,))
            return True

    def done_deleting(self, ids: Iterable[str]) -> None:
        with self._lock, self._db:
            self._db.executemany("DELETE FROM pending_deletes WHERE id = ?", [(i,) for i in ids])

    # -- reads ----------------------------------------------------------------------------------

    def pending_deletes(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT id FROM pending_deletes")]

    def not_embedded(self, limit: int = 1000) -> list[MemoryRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, text, source, conversation_id, created_at, metadata FROM memories "
                "WHERE embedded = 0 LIMIT ?",
                (limit,),
            ).fetchall()
        return [_record(r) for r in rows]

    def expected_chunks(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COALESCE(SUM(chunks), 0) FROM memories").fetchone()[0])

    def all_ids(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT id FROM memories")}

    def get(self, ids: Sequence[str]) -> dict[str, MemoryRecord]:
        out: dict[str, MemoryRecord] = {}
        with self._reader() as db:
            for start in range(0, len(ids), 500):
                part = list(ids[start : start + 500])
                marks = ",".join("?" * len(part))
                for r in db.execute(
                    "SELECT id, text, source, conversation_id, created_at, metadata FROM memories "
                    f"WHERE id IN ({marks})",
                    part,
                ):
                    out[r[0]] = _record(r)
            return out

    def turn_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are conversation turns (have a conversation id): one indexed lookup each, no
        record read, so search can weigh candidates by kind before it reads the best ones."""
        out: set[str] = set()
        with self._reader() as db:
            for start in range(0, len(ids), 500):
                part = list(ids[start : start + 500])
                marks = ",".join("?" * len(part))
                out.update(r[0] for r in db.execute(
                    f"SELECT id FROM memories WHERE id IN ({marks}) AND conversation_id IS NOT NULL", part
                ))
            return out

    def latest_in_conversation(self, conversation_id: str, n: int) -> builtins.list[MemoryRecord]:
        """The last ``n`` memories stored in a conversation, oldest first (the turns before a new one)."""
        with self._reader() as db:
            rows = db.execute(
                "SELECT id, text, source, conversation_id, created_at, metadata FROM memories "
                "WHERE conversation_id = ? ORDER BY created_at DESC, rowid DESC LIMIT ?",
                (conversation_id, n),
            ).fetchall()
            return [_record(r) for r in reversed(rows)]

    def count(self, filters: Filters = NO_FILTERS) -> int:
        where, params = _where_sql(filters)
        with self._reader() as db:
            return int(db.execute(f"SELECT COUNT(*) FROM memories m {where}", params).fetchone()[0])

    def list(self, filters: Filters, limit: int, offset: int) -> list[MemoryRecord]:
        """Newest first."""
        where, params = _where_sql(filters)
        with self._reader() as db:
            rows = db.execute(
                "SELECT id, text, source, conversation_id, created_at, metadata FROM memories m "
                f"{where} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
                [*params, limit, offset],
            ).fetchall()
            return [_record(r) for r in rows]

    def search(
        self,
        query: str,
        limit: int,
        filters: Filters = NO_FILTERS,
        *,
        context_weight: float = CONTEXT_WEIGHT,
        max_df: float | None = MAX_DF,
        min_df_rows: int = MIN_DF_ROWS,
    ) -> builtins.list[tuple[str, float]]:
        """(id, score) best first; score is FTS5 bm25 negated so that higher is better. The context column
        (turns before a conversation turn, its dates) counts ``context_weight`` against 1 for the text.
        Terms held by more than ``max_df`` of the memories and more than ``min_df_rows`` memories are left
        out (``max_df`` None: every term counts)."""
        terms = query_terms(query, self._stop)
        if not terms:
            return []
        where, params = _where_sql(filters, prefix="AND")
        rank = f"bm25(memories_fts, 1.0, {float(context_weight)!r})"
        sql = (
            f"SELECT m.id, -{rank} AS score FROM memories_fts "
            "JOIN memories m ON m.rowid = memories_fts.rowid "
            f"WHERE memories_fts MATCH ? {where} ORDER BY {rank} LIMIT ?"
        )
        with self._reader() as db:
            if max_df is not None and len(terms) > 1:
                terms = self._rare_terms(db, terms, max_df, min_df_rows)
            expr = match_expression(terms)
            rows = db.execute(sql, [expr, *params, limit]).fetchall()
            return [(r[0], float(r[1])) for r in rows]

    def _rare_terms(
        self, db: sqlite3.Connection, terms: builtins.list[str], max_df: float, min_df_rows: int
    ) -> builtins.list[str]:
        """The terms held by at most ``max_df`` of the memories or at most ``min_df_rows`` memories, or the
        rarest one when every term is common. Counts are cached for STATS_TTL_S: they change slowly."""
        now = time.monotonic()
        total, counted = self._rows
        if now - counted > STATS_TTL_S:
            total = int(db.execute("SELECT count(*) FROM memories").fetchone()[0])
            self._rows = (total, now)
        if total <= min_df_rows:  # no term can be common: nothing to count
            return terms
        if len(self._df) > 50_000:  # a bound on the cache, never reached by one user's questions in 10 minutes
            self._df = {}
        df: dict[str, int] = {}
        for term in terms:
            hit = self._df.get(term)
            if hit is None or now - hit[1] > STATS_TTL_S:
                n = int(db.execute("SELECT count(*) FROM memories_fts WHERE memories_fts MATCH ?",
                                   [match_expression([term])]).fetchone()[0])  # fmt: skip
                hit = (n, now)
                self._df[term] = hit
            df[term] = hit[0]
        limit = max(max_df * total, min_df_rows)
        keep = [t for t in terms if df[t] <= limit]
        return keep or [min(terms, key=df.__getitem__)]


def _record(row: Sequence[Any]) -> MemoryRecord:
    return MemoryRecord(row[0], row[1], row[2], row[3], float(row[4]), json.loads(row[5] or "{}"))


_KEY_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
METADATA_KEY_RULE = "1-64 letters, digits or '_.-'"


def is_metadata_key(key: str) -> bool:
    """Whether ``key`` may be used in a ``where`` filter (it is put inside a JSON path)."""
    return bool(_KEY_RE.match(key))


def _where_sql(filters: Filters, prefix: str = "WHERE") -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if filters.sources:
        clauses.append(f"m.source IN ({','.join('?' * len(filters.sources))})")
        params.extend(filters.sources)
    if filters.source_prefix:
        clauses.append("substr(m.source, 1, ?) = ?")
        params.extend([len(filters.source_prefix), filters.source_prefix])
    if filters.conversation_id:
        clauses.append("m.conversation_id = ?")
        params.append(filters.conversation_id)
    if filters.since is not None:
        clauses.append("m.created_at >= ?")
        params.append(filters.since)
    if filters.until is not None:
        clauses.append("m.created_at < ?")
        params.append(filters.until)
    for key, value in filters.where:
        if not _KEY_RE.match(key):
            raise ValueError(f"bad metadata key {key!r}")
        clauses.append(f"json_extract(m.metadata, '$.\"{key}\"') = ?")
        params.append(value)
    if not clauses:
        return "", []
    return f"{prefix} " + " AND ".join(clauses), params
