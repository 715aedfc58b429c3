"""What memory learns from thumbs up and down on chat answers: a bounded score adjustment for similar questions.

A rating is stored with the question it answered (text and embedding) and the memories that were recalled
into the answer (with their rank in the recall). When a later search has candidates that were rated, each
such memory's fused score moves by

    shift = bound * spread * tanh(sum over its ratings of sign * weight)
    weight = step * closeness(question, rated question) / rank**rank_power * 0.5 ** (age / half_life)

where ``closeness`` is 0 below ``threshold`` cosine and rises to 1 for the same question, ``sign`` is +1 for
a good answer and -1 for a bad one, and ``spread`` is the spread of the top fused scores. So:

- a rating touches only similar questions (a rating of "what is the dentist's number" does nothing to
  "what did I plant in the garden");
- the memory the answer relied on most (rank 1) moves most; the others of the answer much less (1/8 at
  rank 2), so a bad answer barely demotes the right memory that was recalled below a wrong one;
- the shift is bounded (``tanh``; at most ``bound`` times the spread, one click gives 3/4 of that), so a
  memory that is clearly the best match still wins whatever the clicks;
- ratings fade with ``half_life_days``, and any rating can be undone (``assistant memory feedback --undo``).

Only the memories the answer used move (``record(answer=...)``): a memory is used when the answer repeats a
content word of it (a name, a number, a thing) that the question does not hold (memory/overlap.py). A
thumbs-down on "No" for "Is Tomas allergic to anything?" with "Tomas is allergic to peanuts" recalled says
nothing about the note: the answer ignored it. The others are stored as "recalled, not used" and do not
move; ``rank`` in the weight above is the memory's place among the used ones. Without the answer's text
(older callers), or without a way to read the memories' texts (``texts``), every recalled memory counts as
used, as before.

Rating the same answer again replaces the earlier rating. The store is SQLite beside the keyword index.
"""

from __future__ import annotations

import math
import threading
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.core.clock import Clock
from assistant.core.sqlite_db import open_durable
from memory.overlap import used_memory

if TYPE_CHECKING:
    from memory.hybrid import Fused

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ratings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    conversation_id TEXT NOT NULL,
    turn_id INTEGER NOT NULL,
    good INTEGER NOT NULL,
    question TEXT NOT NULL,
    vector BLOB NOT NULL,
    UNIQUE(conversation_id, turn_id)
);
CREATE TABLE IF NOT EXISTS rated_memories (
    rating_id INTEGER NOT NULL REFERENCES ratings(id) ON DELETE CASCADE,
    memory_id TEXT NOT NULL,
    rank INTEGER NOT NULL,
    used_rank INTEGER,
    PRIMARY KEY (rating_id, memory_id)
);
CREATE INDEX IF NOT EXISTS rated_by_memory ON rated_memories(memory_id);
"""


@dataclass(frozen=True)
class FeedbackConfig:
    """Chosen with benchmarks/feedback_experiment.py (the sweep is in docs/memory.md)."""

    threshold: float = 0.5  # cosine between questions below which a rating has no effect
    bound: float = 0.5  # the largest shift, as a share of the spread of the top fused scores
    step: float = 1.0  # one rating of the rank-1 memory, same question: tanh(1) = 0.76 of the bound
    rank_power: float = 3.0  # a memory recalled at rank r gets 1/r**rank_power of it (answers lean on rank 1)
    half_life_days: float = 90.0
    spread_depth: int = 10  # the spread is measured over this many top candidates


@dataclass
class Rating:
    id: int
    created_at: float
    conversation_id: str
    turn_id: int
    good: bool
    question: str
    memory_ids: list[str] = field(default_factory=list)  # the used ones, which it moves, in recall order
    not_used: list[str] = field(default_factory=list)  # recalled into the answer, not used: not moved

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": datetime.fromtimestamp(self.created_at, UTC).isoformat().replace("+00:00", "Z"),
            "conversation_id": self.conversation_id,
            "turn_id": self.turn_id,
            "rating": "good" if self.good else "bad",
            "question": self.question,
            "memory_ids": self.memory_ids,
            "recalled_not_used": self.not_used,
        }


def _pack(vector: Sequence[float]) -> bytes:
    return array("f", vector).tobytes()


def _unpack(blob: bytes) -> list[float]:
    a = array("f")
    a.frombytes(blob)
    return a.tolist()


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


class FeedbackStore:
    """Ratings of answers and the memories recalled into them; ``adjust`` is the hook search calls."""

    def __init__(
        self,
        path: Path,
        embed: Callable[[str], Sequence[float]],
        clock: Clock,
        config: FeedbackConfig | None = None,
        texts: Callable[[Sequence[str]], Mapping[str, str]] | None = None,
    ) -> None:
        self._db = open_durable(path, _SCHEMA)
        self._lock = threading.Lock()
        self.embed = embed
        self.clock = clock
        self.config = config or FeedbackConfig()
        # The memories' texts by id, to tell which ones an answer used (MemoryService sets it).
        self.texts = texts
        self._migrate()

    def _migrate(self) -> None:
        """Stores from before "recalled, not used": every rated memory counted, at its recall rank."""
        cols = {r[1] for r in self._db.execute("PRAGMA table_info(rated_memories)")}
        if "used_rank" not in cols:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("ALTER TABLE rated_memories ADD COLUMN used_rank INTEGER")
            self._db.execute("UPDATE rated_memories SET used_rank = rank")
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writes ---------------------------------------------------------------------------------

    def used(self, question: str, answer: str | None, memory_ids: Sequence[str]) -> list[str]:
        """Which of ``memory_ids`` the answer used (all of them when that cannot be told)."""
        if answer is None or self.texts is None or not memory_ids:
            return list(memory_ids)
        texts = self.texts(memory_ids)
        return [m for m in memory_ids if m in texts and used_memory(question, answer, texts[m])]

    def record(
        self, *, question: str, memory_ids: Sequence[str], good: bool, conversation_id: str, turn_id: int,
        answer: str | None = None,
    ) -> Rating:
        """Store (or replace) the rating of one answer: the question it answered and the memories recalled
        into it, best first. With ``answer`` (its text) only the memories it used will move."""
        vector = _pack(self.embed(question))
        now = self.clock.now().timestamp()
        unique = list(dict.fromkeys(memory_ids))
        used = self.used(question, answer, unique)
        used_rank = {m: n for n, m in enumerate(used, start=1)}
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "DELETE FROM ratings WHERE conversation_id=? AND turn_id=?", (conversation_id, turn_id)
                )
                cur = self._db.execute(
                    "INSERT INTO ratings(created_at, conversation_id, turn_id, good, question, vector) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (now, conversation_id, turn_id, int(good), question, vector),
                )
                rating_id = int(cur.lastrowid or 0)
                self._db.executemany(
                    "INSERT INTO rated_memories(rating_id, memory_id, rank, used_rank) VALUES (?, ?, ?, ?)",
                    [(rating_id, m, rank, used_rank.get(m)) for rank, m in enumerate(unique, start=1)],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return Rating(rating_id, now, conversation_id, turn_id, good, question, used,
                      [m for m in unique if m not in used_rank])

    def undo(self, rating_id: int) -> bool:
        """Forget one rating and what was learned from it."""
        with self._lock:
            cur = self._db.execute("DELETE FROM ratings WHERE id=?", (rating_id,))
        return cur.rowcount > 0

    # -- reads ----------------------------------------------------------------------------------

    def ratings(self, limit: int = 50, offset: int = 0) -> list[Rating]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, created_at, conversation_id, turn_id, good, question FROM ratings "
                "ORDER BY id DESC LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
            ratings = [Rating(r[0], r[1], r[2], r[3], bool(r[4]), r[5]) for r in rows]
            for rating in ratings:
                for m, used_rank in self._db.execute(
                    "SELECT memory_id, used_rank FROM rated_memories WHERE rating_id=? ORDER BY rank", (rating.id,)
                ):
                    (rating.memory_ids if used_rank is not None else rating.not_used).append(m)
        return ratings

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM ratings").fetchone()[0])

    def effects(self, query_vector: Sequence[float], memory_ids: Sequence[str]) -> dict[str, float]:
        """The summed, signed weight of the ratings of each of ``memory_ids`` for this question (before
        ``tanh``); memories without ratings close enough to the question are left out."""
        ids = list(dict.fromkeys(memory_ids))
        rows: list[tuple[str, int, int, float, bytes]] = []
        with self._lock:
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                marks = ",".join("?" * len(part))
                rows += self._db.execute(
                    "SELECT m.memory_id, m.used_rank, r.good, r.created_at, r.vector FROM rated_memories m "
                    f"JOIN ratings r ON r.id = m.rating_id WHERE m.memory_id IN ({marks}) "
                    "AND m.used_rank IS NOT NULL",
                    part,
                ).fetchall()
        if not rows:
            return {}
        cfg = self.config
        now = self.clock.now().timestamp()
        closeness: dict[bytes, float] = {}
        out: dict[str, float] = {}
        for memory_id, rank, good, created_at, blob in rows:
            if blob not in closeness:
                sim = cosine(query_vector, _unpack(blob))
                closeness[blob] = max(0.0, (sim - cfg.threshold) / (1.0 - cfg.threshold))
            near = closeness[blob]
            if near <= 0.0:
                continue
            age_days = max(0.0, now - created_at) / 86400.0
            weight = cfg.step * near / rank**cfg.rank_power * math.pow(0.5, age_days / cfg.half_life_days)
            out[memory_id] = out.get(memory_id, 0.0) + (weight if good else -weight)
        return out

    def adjust(self, fused: list[Fused], query_vector: Callable[[], Sequence[float]]) -> list[Fused]:
        """``fused`` (best first) with the scores of rated memories moved, re-sorted. The query is embedded
        (``query_vector``) only when some candidate has a rating."""
        if not fused:
            return fused
        with self._lock:
            any_rated = self._db.execute(
                "SELECT 1 FROM rated_memories WHERE used_rank IS NOT NULL LIMIT 1"
            ).fetchone() is not None
        if not any_rated:
            return fused
        effects = self.effects(query_vector(), [f.id for f in fused])
        if not effects:
            return fused
        top = fused[: self.config.spread_depth]
        spread = (top[0].score - top[-1].score) or abs(top[0].score) or 1.0
        for f in fused:
            effect = effects.get(f.id)
            if effect:
                shift = self.config.bound * spread * math.tanh(effect)
                f.score += shift
                f.retrievers["feedback"] = {"shift": round(shift, 6)}
        return sorted(fused, key=lambda f: f.score, reverse=True)
