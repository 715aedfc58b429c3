"""MemoryService: add, search (dense, keyword or hybrid), list, delete; keeps Chroma and FTS5 in step.

Write order (what makes an acknowledged add survive kill -9 in both indexes):
1. the record is committed to SQLite (FTS5 updated by trigger in the same transaction), ``embedded = 0``;
2. its chunk vectors are upserted into Chroma;
3. the record is marked ``embedded = 1``.
A delete commits "row gone + id queued" in SQLite, then deletes from Chroma, then unqueues. ``recover()``
(run at start) re-embeds rows left at ``embedded = 0`` and replays queued deletes; when Chroma's vector count
differs from what SQLite expects it also re-embeds rows whose vectors are missing (marked embedded, but Chroma
lost them) and drops vectors with no row. All of it is idempotent.
"""

from __future__ import annotations

import builtins
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from assistant.core.clock import Clock
from assistant.core.metrics import NULL_RECORDER, Recorder
from assistant.core.recall import Provenance
from assistant.core.storage_errors import StoreCorrupt, is_corruption, storage_error
from memory.context import turn_context
from memory.hybrid import FusionMethod, apply_recency, fuse, suppress_near_duplicates
from memory.keyword import (
    CONTEXT_WEIGHT,
    MAX_DF,
    MIN_DF_ROWS,
    NO_FILTERS,
    Filters,
    KeywordIndex,
    MemoryRecord,
)
from memory.validate import (
    PROVENANCE_KEY,
    check_metadata,
    check_source,
    check_text,
    record_provenance,
    resolve_provenance,
)

if TYPE_CHECKING:
    from memory.embedder import Embedder
    from memory.feedback import FeedbackStore
    from memory.store import VectorStore

log = logging.getLogger(__name__)

Mode = Literal["hybrid", "dense", "keyword"]
MODES: tuple[str, ...] = ("hybrid", "dense", "keyword")


@dataclass(frozen=True)
class NewMemory:
    text: str
    source: str = "note"
    conversation_id: str | None = None
    metadata: Mapping[str, Any] | None = None
    created_at: datetime | None = None
    # Where the text came from (assistant.core.recall): None derives it from ``source``. Set by code only.
    provenance: str | None = None


@dataclass
class Hit:
    record: MemoryRecord
    score: float
    retrievers: dict[str, dict[str, float]] = field(default_factory=dict)
    duplicates: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {**record_dict(self.record), "score": round(self.score, 6), "retrievers": self.retrievers,
                "duplicates": self.duplicates}


def provenance_of(r: MemoryRecord) -> Provenance:
    """user, conversation or untrusted: stored with the memory, or derived from its source (older stores)."""
    return record_provenance(r.source, r.metadata)


def record_dict(r: MemoryRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "text": r.text,
        "source": r.source,
        "provenance": provenance_of(r),
        "conversation_id": r.conversation_id,
        "created_at": datetime.fromtimestamp(r.created_at, UTC).isoformat().replace("+00:00", "Z"),
        "metadata": {k: v for k, v in r.metadata.items() if k != PROVENANCE_KEY},
    }


@dataclass
class SearchConfig:
    fusion: FusionMethod = "zscore"
    dense_weight: float = 1.0
    keyword_weight: float = 1.0
    rrf_k: float = 60.0
    candidates: int = 100
    recency_weight: float = 0.1
    recency_half_life_days: float = 30.0
    duplicate_threshold: float = 0.85
    # Conversation turns (memories with a conversation id; memory/context.py): how many turns before
    # each are indexed with it, whether its dates are, the BM25 weight of that context column, and the
    # dense weight in fusion for turns (the embedder is weak on short turns). Tuned on LoCoMo.
    context_turns: int = 2
    context_dates: bool = True
    context_weight: float = CONTEXT_WEIGHT
    turn_dense_weight: float = 0.35
    # Keyword search leaves out query terms held by more than this share of the memories and by more than
    # keyword_min_df_rows of them (None: none left out): memory/keyword.py MAX_DF.
    keyword_max_df: float | None = MAX_DF
    keyword_min_df_rows: int = MIN_DF_ROWS


def new_memory_id() -> str:
    return "mem-" + uuid.uuid4().hex[:20]


class MemoryService:
    def __init__(
        self,
        keyword: KeywordIndex,
        vectors: VectorStore,
        embedder: Embedder,
        clock: Clock,
        *,
        config: SearchConfig | None = None,
        max_chars: int = 20_000,
        recency: bool = True,
        feedback_path: Path | None = None,
        recorder: Recorder = NULL_RECORDER,
    ) -> None:
        self.keyword = keyword
        self.vectors = vectors
        self.embedder = embedder
        self.clock = clock
        self.config = config or SearchConfig()
        self.max_chars = max_chars
        self.recency = recency
        self._write_lock = threading.Lock()
        self.recorder = recorder  # search latency for /metrics
        # Ratings of chat answers (memory/feedback.py): bounded moves for memories rated on similar questions.
        self.feedback: FeedbackStore | None = None
        if feedback_path is not None:
            from memory.feedback import FeedbackStore

            self.feedback = FeedbackStore(feedback_path, self.query_vector, clock, texts=self.texts)
        self._query_cache: OrderedDict[str, list[float]] = OrderedDict()
        self._ratio = 1.0
        self._ratio_age = 0

    # -- writes ---------------------------------------------------------------------------------

    def add(
        self,
        text: str,
        source: str = "note",
        conversation_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        created_at: datetime | None = None,
        provenance: str | None = None,
    ) -> str:
        """Store one memory; returns its id once it is durable in both indexes.

        ``provenance`` (user, conversation, untrusted) is for code that knows where the text came from;
        None derives it from ``source``. Feed text is untrusted whatever is given."""
        return self.add_many([NewMemory(text, source, conversation_id, metadata, created_at, provenance)])[0]

    def add_many(self, items: Sequence[NewMemory]) -> list[str]:
        now = self.clock.now().timestamp()
        checked = [
            (
                check_text(it.text, self.max_chars),
                check_source(it.source),
                it.created_at.timestamp() if it.created_at else now,
                {**check_metadata(it.metadata), PROVENANCE_KEY: resolve_provenance(it.source, it.provenance)},
            )
            for it in items
        ]
        if not checked:
            return []
        contexts = self._turn_contexts([(it.conversation_id, c[0], c[2], c[3]) for it, c in zip(items, checked, strict=True)])
        records = [
            MemoryRecord(new_memory_id(), text, source, it.conversation_id, created, metadata, context)
            for it, (text, source, created, metadata), context in zip(items, checked, contexts, strict=True)
        ]
        chunks = [self._chunks(r.text) for r in records]
        vectors = self._embed_chunks(chunks)
        with self._write_lock:
            self.keyword.insert(records, [len(c) for c in chunks])
            try:
                self.vectors.upsert(records, vectors)
                self.keyword.mark_embedded(r.id for r in records)
            except Exception:
                self._undo_insert([r.id for r in records])
                raise
        return [r.id for r in records]

    def _undo_insert(self, ids: builtins.list[str]) -> None:
        """An add that failed after its record was committed (Chroma refused: a full disk) takes the record
        back, so the caller's error means "not saved". If the disk refuses that too, the record stays
        unembedded and ``recover`` embeds it at the next start."""
        try:
            for memory_id in ids:
                self.keyword.delete(memory_id)
            self.vectors.delete(ids)
            self.keyword.done_deleting(ids)
        except Exception:  # noqa: BLE001 - the first error is the one to report
            log.warning("could not take back a failed add of %d memories; the next start finishes it", len(ids))

    def delete(self, memory_id: str) -> bool:
        with self._write_lock:
            if not self.keyword.delete(memory_id):
                return False
            self.vectors.delete([memory_id])
            self.keyword.done_deleting([memory_id])
            return True

    def recover(self) -> dict[str, int]:
        """Bring Chroma in step with the SQLite record after a crash; cheap when nothing is pending."""
        stats = {"reembedded": 0, "deleted": 0, "orphans": 0}
        with self._write_lock:
            pending = self.keyword.pending_deletes()
            if pending:
                self.vectors.delete(pending)
                self.keyword.done_deleting(pending)
                stats["deleted"] = len(pending)
            while batch := self.keyword.not_embedded(500):
                chunks = [self._chunks(r.text) for r in batch]
                self.vectors.upsert(batch, self._embed_chunks(chunks))
                self.keyword.mark_embedded(r.id for r in batch)
                stats["reembedded"] += len(batch)
            if self.vectors.count() != self.keyword.expected_chunks():
                # Chroma lost vectors of rows marked embedded (a Chroma write that never reached the disk,
                # a restored Chroma dir) or holds some SQLite does not (a shared Chroma server): compare.
                in_chroma = self.vectors.memory_ids()
                in_sqlite = self.keyword.all_ids()
                orphans = in_chroma - in_sqlite
                self.vectors.delete(sorted(orphans))
                stats["orphans"] = len(orphans)
                missing = sorted(in_sqlite - in_chroma)
                for start in range(0, len(missing), 500):
                    batch = list(self.keyword.get(missing[start : start + 500]).values())
                    self.vectors.upsert(batch, self._embed_chunks([self._chunks(r.text) for r in batch]))
                    stats["reembedded"] += len(batch)
        if any(stats.values()):
            log.info("memory recovery: %s", stats)
        return stats

    def check_vectors(
        self, chroma_dir: Path | None, chroma_url: str | None, collection: str, samples: int = 5
    ) -> None:
        """At start, after ``recover``: of a few stored memories, embedded again, one at least must find its
        own vector in Chroma (HNSW search is approximate: not every one has to). Damaged index files make
        Chroma answer with wrong neighbours instead of an error; this turns that into StoreCorrupt with
        what to do, instead of quietly wrong recall for months."""
        from memory.store import vectors_damaged

        records = self.keyword.list(NO_FILTERS, samples, 0)
        if not records:
            return
        vectors = self.embedder.embed([self._chunks(r.text)[0] for r in records])
        try:
            if any(self.vectors.finds_itself(v) for v in vectors):
                return
            detail = f"none of {len(records)} stored memories finds its own vector"
        except Exception as exc:
            if storage_error(exc) is not None or (chroma_url and not is_corruption(exc)):
                raise  # a full disk, a Chroma server that is down: no damage to report
            detail = f"{type(exc).__name__}: {exc}"  # an index that cannot even be read
        raise StoreCorrupt(vectors_damaged(chroma_dir, chroma_url, collection, detail))

    def _turn_contexts(self, turns: Sequence[tuple[str | None, str, float, dict[str, Any]]]) -> builtins.list[str]:
        """The BM25 context of each new memory (memory/context.py): for a conversation turn, the turns
        before it in that conversation (stored ones, then earlier ones of this batch) and its dates; also
        its index in the conversation as metadata ``turn`` unless given. Empty for other memories."""
        cfg = self.config
        before: dict[str, builtins.list[str]] = {}
        position: dict[str, int] = {}
        out: builtins.list[str] = []
        for conversation_id, text, created_at, metadata in turns:
            if conversation_id is None:
                out.append("")
                continue
            if conversation_id not in before:
                stored = self.keyword.latest_in_conversation(conversation_id, cfg.context_turns)
                before[conversation_id] = [r.text for r in stored]
                position[conversation_id] = self.keyword.count(Filters(conversation_id=conversation_id))
            previous = before[conversation_id][-cfg.context_turns :] if cfg.context_turns > 0 else []
            out.append(turn_context(previous, text, created_at, dates=cfg.context_dates))
            before[conversation_id].append(text)
            metadata.setdefault("turn", position[conversation_id])
            position[conversation_id] += 1
        return out

    def _chunks(self, text: str) -> list[str]:
        if len(text) < 250:  # can't exceed the 256-wordpiece window: skip tokenising
            return [text]
        return self.embedder.chunk(text)

    def _embed_chunks(self, chunks: Sequence[Sequence[str]]) -> list[list[list[float]]]:
        flat = [c for cs in chunks for c in cs]
        vecs = self.embedder.embed(flat)
        out: list[list[list[float]]] = []
        i = 0
        for cs in chunks:
            out.append(vecs[i : i + len(cs)])
            i += len(cs)
        return out

    # -- reads ----------------------------------------------------------------------------------

    def get(self, memory_id: str) -> MemoryRecord | None:
        return self.keyword.get([memory_id]).get(memory_id)

    def list(self, filters: Filters = NO_FILTERS, limit: int = 50, offset: int = 0) -> tuple[list[MemoryRecord], int]:
        return self.keyword.list(filters, limit, offset), self.keyword.count(filters)

    def count(self) -> int:
        return self.keyword.count()

    def texts(self, memory_ids: Sequence[str]) -> dict[str, str]:
        """The texts of those of ``memory_ids`` that exist, by id (feedback reads what an answer used)."""
        return {i: r.text for i, r in self.keyword.get(list(memory_ids)).items()}

    def _chunk_ratio(self) -> float:
        """Chunk vectors per memory (1.0 for chat-length memories), refreshed every 1000 queries."""
        self._ratio_age -= 1
        if self._ratio_age <= 0:
            memories = self.keyword.count()
            self._ratio = self.keyword.expected_chunks() / memories if memories else 1.0
            self._ratio_age = 1000
        return self._ratio

    def query_vector(self, query: str) -> builtins.list[float]:
        vec = self._query_cache.get(query)
        if vec is None:
            vec = self.embedder.embed([query])[0]
            self._query_cache[query] = vec
            if len(self._query_cache) > 256:
                self._query_cache.popitem(last=False)
        return vec

    def rankings(self, query: str, filters: Filters, mode: Mode, depth: int) -> dict[str, builtins.list[tuple[str, float]]]:
        """The raw candidate lists of each retriever the mode uses."""
        out: dict[str, list[tuple[str, float]]] = {}
        if mode in ("hybrid", "dense"):
            out["dense"] = self.vectors.query(self.query_vector(query), depth, filters, self._chunk_ratio())
        if mode in ("hybrid", "keyword"):
            out["keyword"] = self.keyword.search(
                query, depth, filters, context_weight=self.config.context_weight, max_df=self.config.keyword_max_df,
                min_df_rows=self.config.keyword_min_df_rows,
            )
        return out

    def search(
        self,
        query: str,
        k: int = 10,
        filters: Filters = NO_FILTERS,
        *,
        mode: Mode = "hybrid",
        recency: bool | None = None,
        dedupe: bool = True,
    ) -> builtins.list[Hit]:
        """The ``k`` best memories for ``query``: the function the daemon, the API and the eval all use."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        if not query.strip() or k <= 0:
            return []
        cfg, started = self.config, time.perf_counter()
        ranks = self.rankings(query, filters, mode, max(cfg.candidates, k))
        fused = fuse(
            ranks, {"dense": cfg.dense_weight, "keyword": cfg.keyword_weight}, cfg.fusion, cfg.rrf_k,
            self._kind_weights(ranks) if mode == "hybrid" else None,
        )
        fused = fused[: max(cfg.candidates, 3 * k)]
        records = self.keyword.get([f.id for f in fused])
        fused = [f for f in fused if f.id in records]  # deleted between the two reads
        if self.recency if recency is None else recency:
            fused = apply_recency(
                fused,
                {i: r.created_at for i, r in records.items()},
                self.clock.now().timestamp(),
                cfg.recency_weight,
                cfg.recency_half_life_days,
            )
        if self.feedback is not None:  # bounded moves for memories rated on similar questions
            fused = self.feedback.adjust(fused, lambda: self.query_vector(query))
        if dedupe:
            kept, hidden = suppress_near_duplicates(fused, lambda i: records[i].text, k, cfg.duplicate_threshold)
        else:
            kept, hidden = fused[:k], {}
        self.recorder.memory_search(time.perf_counter() - started)
        return [Hit(records[f.id], f.score, f.retrievers, hidden.get(f.id, 0)) for f in kept]

    def _kind_weights(self, ranks: Mapping[str, Sequence[tuple[str, float]]]) -> dict[str, dict[str, float]]:
        """Fusion weights by kind of memory: conversation turns get ``turn_dense_weight`` for the dense half."""
        w = self.config.turn_dense_weight
        if w == self.config.dense_weight:
            return {}
        turns = self.keyword.turn_ids(list(dict.fromkeys(i for r in ranks.values() for i, _ in r)))
        return {"dense": dict.fromkeys(turns, w)}

    def warm_up(self) -> None:
        """Load the embedding model now (daemon start) rather than on the first search."""
        self.query_vector("warm up")

    def close(self) -> None:
        if self.feedback is not None:
            self.feedback.close()
        self.keyword.close()
