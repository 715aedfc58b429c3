"""Opening memory: the records and the vector index under a directory (or a Chroma server), checked and
recovered before the first search, with a clear StoreCorrupt for damage a user can fix; the daemon's memory
built from settings (``build_memory``). What memory does once open is memory/service.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.core.clock import Clock
from assistant.core.metrics import NULL_RECORDER, Recorder
from assistant.core.storage_errors import StoreCorrupt, is_corruption, storage_error
from memory.keyword import KeywordIndex
from memory.service import MemoryService, SearchConfig

if TYPE_CHECKING:
    from assistant.config import Settings
    from memory.embedder import Embedder


def search_config(settings: Settings) -> SearchConfig:
    m = settings.memory
    return SearchConfig(
        fusion=m.fusion,
        dense_weight=m.dense_weight,
        keyword_weight=m.keyword_weight,
        rrf_k=m.rrf_k,
        candidates=m.candidates,
        recency_weight=m.recency_weight,
        recency_half_life_days=m.recency_half_life_days,
        duplicate_threshold=m.duplicate_threshold,
        context_turns=m.context_turns,
        context_dates=m.context_dates,
        context_weight=m.context_weight,
        turn_dense_weight=m.turn_dense_weight,
        keyword_max_df=None if m.keyword_max_df >= 1 else m.keyword_max_df,
        keyword_min_df_rows=m.keyword_min_df_rows,
    )


def open_memory(
    directory: Path,
    clock: Clock,
    *,
    chroma_url: str | None = None,
    collection: str = "memories",
    config: SearchConfig | None = None,
    max_chars: int = 20_000,
    recency: bool = True,
    embedder: Embedder | None = None,
    feedback: bool = False,
    recorder: Recorder = NULL_RECORDER,
) -> MemoryService:
    """Open (or create) a memory under ``directory``: keyword.sqlite3 and chroma/ (unless chroma_url), and
    with ``feedback`` the ratings of chat answers in feedback.sqlite3.

    Without ``embedder``: the ONNX one (bulk work on every core), its model under the default data dir."""
    from assistant.config import default_data_dir
    from memory.store import open_vectors, vectors_damaged

    directory.mkdir(parents=True, exist_ok=True)
    keyword = open_keyword(directory / "keyword.sqlite3")
    chroma_dir = None if chroma_url else directory / "chroma"
    vectors = open_vectors(chroma_dir, chroma_url, collection)
    service = MemoryService(
        keyword, vectors, embedder or make_embedder("onnx", default_data_dir(), threads=0), clock,
        config=config, max_chars=max_chars, recency=recency,
        feedback_path=directory / "feedback.sqlite3" if feedback else None, recorder=recorder,
    )
    try:
        with _crash_guard(directory / ".vector-check", chroma_dir, chroma_url, collection):
            service.recover()
            service.check_vectors(chroma_dir, chroma_url, collection)
    except Exception as exc:
        service.close()
        if chroma_dir is not None and _from_chroma(exc) and storage_error(exc) is None:
            # e.g. "Error loading hnsw index": Chroma cannot read its own files
            raise StoreCorrupt(vectors_damaged(chroma_dir, chroma_url, collection, str(exc))) from exc
        raise
    except BaseException:
        service.close()
        raise
    return service


def _from_chroma(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("chromadb") and not isinstance(exc, StoreCorrupt)


CRASHED_STARTS = 2


@contextmanager
def _crash_guard(marker: Path, chroma_dir: Path | None, chroma_url: str | None, collection: str) -> Iterator[None]:
    """A damaged HNSW index can crash Chroma's native code (SIGSEGV) rather than raise, which systemd would
    restart forever. Each start counts itself in ``marker`` before the first index reads and removes it
    after them (or after any Python error); a marker showing CRASHED_STARTS starts that died there turns
    the next start into StoreCorrupt. Being killed inside those few reads twice in a row is no accident."""
    from memory.store import vectors_damaged

    if chroma_url:  # the index lives in the server's process
        yield
        return
    try:
        crashed = int(marker.read_text() or "0")
    except (FileNotFoundError, ValueError):
        crashed = 0
    if crashed >= CRASHED_STARTS:
        marker.unlink()  # after the fix (the dir moved aside) the next start checks again
        raise StoreCorrupt(vectors_damaged(
            chroma_dir, chroma_url, collection, f"the last {crashed} starts died while reading the vector index"
        ))  # fmt: skip
    with marker.open("w") as f:
        f.write(str(crashed + 1))
        f.flush()
        os.fsync(f.fileno())
    try:
        yield
    finally:
        marker.unlink(missing_ok=True)


def open_keyword(path: Path) -> KeywordIndex:
    """The memory records (the source of truth); damage to them raises StoreCorrupt saying what to do."""
    try:
        keyword = KeywordIndex(path)
        keyword.count()
        return keyword
    except Exception as exc:
        if is_corruption(exc):
            raise StoreCorrupt(
                f"the memory records {path} are damaged ({exc}). Stop the daemon and restore the data dir "
                f"from a backup (assistant restore FILE). To start without memories instead, move the "
                f"directory aside (mv {path.parent} {path.parent}.broken)"
            ) from exc
        raise


def make_embedder(kind: str, data_dir: Path, *, threads: int = 1, bulk_threads: int = 0) -> Embedder:
    """The embedder plugin ``memory.embedder`` names (memory.embedder.build_embedder). ``threads`` for
    chat-time calls (0 = every core); ``bulk_threads`` for calls of many texts (0 = every core)."""
    from memory.embedder import build_embedder

    return build_embedder(kind, data_dir, threads=threads, bulk_threads=bulk_threads)


def build_memory(
    settings: Settings, clock: Clock, *, embedder: Embedder | None = None, recorder: Recorder = NULL_RECORDER
) -> MemoryService:
    """The daemon's memory with the ratings of its answers; ``embedder`` replaces the configured one."""
    m = settings.memory
    return open_memory(
        settings.data_dir / "memory",
        clock,
        chroma_url=m.chroma_url,
        collection=m.collection,
        config=search_config(settings),
        max_chars=m.max_chars,
        recency=m.recency,
        embedder=embedder or make_embedder(m.embedder, settings.data_dir, threads=m.embed_threads),
        feedback=True,
        recorder=recorder,
    )
