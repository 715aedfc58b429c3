"""Vectors in Chroma: an embedded PersistentClient under the data dir, or a Chroma server (HttpClient).

Each memory is stored as one or more chunk vectors (ids ``<memory id>#<n>``) so that long notes are seen
whole by the 256-token embedder; a query takes the best chunk of each memory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from assistant.core.storage_errors import StoreCorrupt, is_corruption
from memory.keyword import NO_FILTERS, Filters, MemoryRecord

# A stored vector queried back must come out as itself (cosine similarity 1 up to rounding).
SELF_MATCH = 0.98


def make_client(path: Path | None, url: str | None) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if url:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"memory.chroma_url must be http(s)://host:port, got {url!r}")
        return chromadb.HttpClient(
            host=parsed.hostname,
            port=parsed.port or (443 if parsed.scheme == "https" else 80),
            ssl=parsed.scheme == "https",
            settings=chroma_settings,
        )
    assert path is not None
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


def open_vectors(path: Path | None, url: str | None, collection: str) -> VectorStore:
    """The VectorStore of an embedded Chroma dir (``path``) or a Chroma server (``url``). A Chroma dir whose
    database SQLite calls damaged raises StoreCorrupt saying how to rebuild it."""
    try:
        return VectorStore(make_client(path, url), collection)
    except Exception as exc:
        if is_corruption(exc):
            raise StoreCorrupt(vectors_damaged(path, url, collection, str(exc))) from exc
        raise


def vectors_damaged(path: Path | None, url: str | None, collection: str, detail: str) -> str:
    """What to do about damaged vectors: the memory records in keyword.sqlite3 are the source of truth and
    every vector is embedded again from them at the next start."""
    rebuilt = (
        "the daemon embeds every memory again from keyword.sqlite3 at its next start (the memories "
        "themselves are safe there; allow about a minute per 10,000 memories)"
    )
    if path is None:
        return (
            f"the Chroma collection {collection!r} at {url} returns damaged vectors ({detail}). Stop the "
            f"daemon, delete that collection on the server, and start the daemon again: {rebuilt}"
        )
    return (
        f"the vector store {path} is damaged ({detail}). Stop the daemon, move it aside "
        f"(mv {path} {path}.broken) and start the daemon again: {rebuilt}. Or restore the whole data dir "
        "from a backup (assistant restore FILE)"
    )


def chroma_where(filters: Filters) -> dict[str, Any] | None:
    clauses: list[dict[str, Any]] = []
    if filters.sources:
        clauses.append({"source": {"$in": list(filters.sources)}})
    if filters.source_prefix:
        clauses.append({"source_kind": filters.source_prefix.rstrip(":")})
    if filters.conversation_id:
        clauses.append({"conversation_id": filters.conversation_id})
    if filters.since is not None:
        clauses.append({"created_at": {"$gte": filters.since}})
    if filters.until is not None:
        clauses.append({"created_at": {"$lt": filters.until}})
    for key, value in filters.where:
        clauses.append({"m." + key: value})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def chunk_metadata(record: MemoryRecord) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "memory_id": record.id,
        "source": record.source,
        "source_kind": record.source.split(":", 1)[0],
        "created_at": record.created_at,
    }
    if record.conversation_id:
        meta["conversation_id"] = record.conversation_id
    for key, value in record.metadata.items():
        if isinstance(value, str | int | float | bool):
            meta["m." + key] = value
    return meta


class VectorStore:
    def __init__(self, client: Any, collection: str) -> None:
        self.client = client
        self.collection = client.get_or_create_collection(
            collection, embedding_function=None, metadata={"hnsw:space": "cosine"}
        )

    def upsert(self, records: Sequence[MemoryRecord], vectors: Sequence[Sequence[Sequence[float]]]) -> None:
        """``vectors[i]`` holds the chunk vectors of ``records[i]``."""
        ids: list[str] = []
        embeddings: list[Sequence[float]] = []
        metadatas: list[dict[str, Any]] = []
        for record, chunk_vectors in zip(records, vectors, strict=True):
            meta = chunk_metadata(record)
            for n, vec in enumerate(chunk_vectors):
                ids.append(f"{record.id}#{n}")
                embeddings.append(vec)
                metadatas.append(meta)
        if not ids:
            return
        step = 4000  # below Chroma's max batch size
        for start in range(0, len(ids), step):
            self.collection.upsert(
                ids=ids[start : start + step],
                embeddings=embeddings[start : start + step],
                metadatas=metadatas[start : start + step],
            )

    def delete(self, memory_ids: Sequence[str]) -> None:
        if memory_ids:
            self.collection.delete(where={"memory_id": {"$in": list(memory_ids)}})

    def count(self) -> int:
        return int(self.collection.count())

    def memory_ids(self) -> set[str]:
        out: set[str] = set()
        offset = 0
        while True:
            got = self.collection.get(include=[], limit=5000, offset=offset)
            if not got["ids"]:
                return out
            out.update(chunk_id.rpartition("#")[0] for chunk_id in got["ids"])
            offset += len(got["ids"])

    def finds_itself(self, vector: Sequence[float]) -> bool:
        """Whether a vector stored here comes back from a query as itself: false when the index files are
        damaged (Chroma then answers with wrong neighbours rather than an error)."""
        return any(sim >= SELF_MATCH for _, sim in self.query(vector, 10, NO_FILTERS))

    def query(
        self, vector: Sequence[float], limit: int, filters: Filters, chunks_per_memory: float = 1.0
    ) -> list[tuple[str, float]]:
        """(memory id, cosine similarity of its best chunk), best first.

        Asks Chroma for enough chunks to cover ``limit`` memories and reads only ids and distances (the
        memory id is the chunk id's prefix), which keeps the query cheap at 100k memories."""
        if limit <= 0:
            return []
        n = max(limit, math.ceil(limit * min(3.0, chunks_per_memory * 1.2)))
        got = self.collection.query(
            query_embeddings=[list(vector)], n_results=n, where=chroma_where(filters), include=["distances"]
        )
        best: dict[str, float] = {}
        for chunk_id, dist in zip(got["ids"][0], got["distances"][0], strict=True):
            mid = chunk_id.rpartition("#")[0]
            sim = 1.0 - float(dist)
            if sim > best.get(mid, -2.0):
                best[mid] = sim
        ranked = sorted(best.items(), key=lambda kv: kv[1], reverse=True)
        return ranked[:limit]
