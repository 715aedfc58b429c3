"""The memory part of a backup: SQLite snapshots, the vectors exported from Chroma, and their re-import.

Memories live in two stores (see memory/service.py): ``memory/keyword.sqlite3`` is the journal of truth
(every memory, with ``embedded = 1`` once its chunk vectors are in Chroma) and ``memory/chroma/`` holds the
vectors. A backup does not archive Chroma's files (their format belongs to one Chroma version, and the
HNSW files are rewritten in place while the daemon runs). Instead:

1. ``keyword.sqlite3`` is snapshotted first, with SQLite's online backup API (one transactionally
   consistent copy, taken while the daemon keeps writing);
2. Chroma's directory is snapshotted next into a scratch dir: ``chroma.sqlite3`` with the backup API,
   then its index files copied; the copy is repeated when any index file changed while it was read;
3. the snapshot is opened with Chroma and the vector of every chunk of every memory in the keyword
   snapshot is exported to ``vectors.sqlite3`` (float32 blobs keyed by chunk id);
4. in the archived keyword copy, ``embedded`` is set to 1 exactly for the memories whose every chunk
   vector was exported, and to 0 for the rest (memories being added or deleted at that instant).

A restore rebuilds a fresh Chroma collection from ``vectors.sqlite3`` with the memory store's own
``VectorStore.upsert``; memories left at ``embedded = 0`` are embedded again by ``recover()`` when the
daemon starts. So a restored daemon has every memory of the keyword snapshot, each with its vectors.
"""

from __future__ import annotations

import logging
import math
import shutil
import sqlite3
import struct
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

log = logging.getLogger(__name__)

SQLITE_HEADER = b"SQLite format 3\x00"
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
CHROMA_DB = "chroma.sqlite3"
COPY_ATTEMPTS = 5
PAGE = 1000


def is_sqlite(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(16) == SQLITE_HEADER


def sqlite_snapshot(src: Path, dst: Path) -> None:
    """A transactionally consistent copy of ``src`` (which may be in use) through the online backup API."""
    source = sqlite3.connect(src, timeout=60)
    try:
        source.execute("PRAGMA query_only=1")
        target = sqlite3.connect(dst)
        try:
            source.backup(target)
        finally:
            target.close()
    finally:
        source.close()


def _index_state(directory: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
        if p.is_file() and not p.name.startswith(CHROMA_DB)
    }


def snapshot_chroma(src: Path, dst: Path) -> bool:
    """Copy a Chroma directory that may be in use: its SQLite file first (backup API), then its index files.

    Index files newer than the SQLite snapshot are harmless (Chroma replays its log idempotently and the
    export keeps only the memories of the keyword snapshot). True when no index file changed while it
    was copied, within ``COPY_ATTEMPTS`` tries."""
    for attempt in range(COPY_ATTEMPTS):
        if dst.exists():
            shutil.rmtree(dst)
        dst.mkdir(parents=True)
        if (src / CHROMA_DB).exists():
            sqlite_snapshot(src / CHROMA_DB, dst / CHROMA_DB)
        before = _index_state(src)
        for rel in before:
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / rel, dst / rel)
        if _index_state(src) == before:
            return True
        log.info("the vector index changed while it was copied (try %d); copying again", attempt + 1)
    return False


def _memories(keyword_db: sqlite3.Connection) -> dict[str, int]:
    """Memory id -> its number of chunks, in the keyword snapshot."""
    return dict(keyword_db.execute("SELECT id, chunks FROM memories"))


def _chroma_vectors(chroma_dir: Path, collection: str) -> Iterator[tuple[str, list[float]]]:
    """(chunk id, vector) of every chunk in the snapshot, a page at a time."""
    from memory.store import make_client

    client = make_client(chroma_dir, None)
    try:
        names = {getattr(c, "name", c) for c in client.list_collections()}
        if collection not in names:
            return
        col = client.get_collection(collection)
        offset = 0
        while True:
            got = col.get(include=["embeddings"], limit=PAGE, offset=offset)
            if not got["ids"]:
                return
            for chunk_id, vec in zip(got["ids"], got["embeddings"], strict=True):
                yield chunk_id, [float(x) for x in vec]
            offset += len(got["ids"])
    finally:
        client.close()


def export_vectors(chroma_dir: Path, keyword: Path, out: Path, collection: str) -> dict[str, int]:
    """Write the vectors of the keyword snapshot's memories to ``out`` and set ``embedded`` in ``keyword``
    to whether each memory's vectors are all there. Returns counts for the manifest."""
    kdb = sqlite3.connect(keyword)
    vdb = sqlite3.connect(out)
    try:
        chunks = _memories(kdb)
        vdb.executescript(
            "CREATE TABLE vectors (chunk_id TEXT PRIMARY KEY, memory_id TEXT NOT NULL, vector BLOB NOT NULL);"
            "CREATE TABLE info (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        )
        dim = 0
        try:
            for chunk_id, vec in _chroma_vectors(chroma_dir, collection):
                memory_id, _, n = chunk_id.rpartition("#")
                if memory_id not in chunks or not n.isdigit() or int(n) >= chunks[memory_id]:
                    continue  # added after the keyword snapshot, or deleted before it
                if not vec or (dim and len(vec) != dim) or not all(math.isfinite(x) for x in vec):
                    continue
                dim = dim or len(vec)
                blob = struct.pack(f"<{len(vec)}f", *vec)
                vdb.execute("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", (chunk_id, memory_id, blob))
        except Exception as exc:  # noqa: BLE001 - a snapshot Chroma cannot read: every memory is re-embedded
            log.warning("could not read the vector snapshot (%s): all memories will be embedded again", exc)
            vdb.execute("DELETE FROM vectors")
        vdb.executemany("INSERT INTO info VALUES (?, ?)", [("collection", collection), ("dim", str(dim))])
        have = dict(vdb.execute("SELECT memory_id, COUNT(*) FROM vectors GROUP BY memory_id"))
        whole = {mid for mid, n in chunks.items() if n > 0 and have.get(mid) == n}
        complete = [(mid,) for mid in sorted(whole)]
        with kdb:
            kdb.execute("UPDATE memories SET embedded = 0")
            kdb.executemany("UPDATE memories SET embedded = 1 WHERE id = ?", complete)
            kdb.execute("DELETE FROM pending_deletes")  # nothing of a deleted memory is in the backup
        partial = [(mid,) for mid in have if mid not in whole]
        vdb.executemany("DELETE FROM vectors WHERE memory_id = ?", partial)
        vdb.commit()
        vectors = int(vdb.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])
        vdb.execute("VACUUM")
        return {"memories": len(chunks), "vectors": vectors, "reembed": len(chunks) - len(complete)}
    finally:
        vdb.close()
        kdb.close()


def import_vectors(vectors: Path, keyword: Path, chroma_dir: Path, collection: str) -> dict[str, int]:
    """Rebuild a Chroma collection under ``chroma_dir`` from an exported ``vectors`` file, with the memory
    store's own code (so each chunk gets the metadata the daemon gives it)."""
    from memory.keyword import KeywordIndex
    from memory.store import VectorStore, make_client

    vdb = sqlite3.connect(vectors)
    index = KeywordIndex(keyword)
    client = make_client(chroma_dir, None)
    done = 0
    try:
        store = VectorStore(client, collection)
        ids = [mid for (mid,) in vdb.execute("SELECT DISTINCT memory_id FROM vectors ORDER BY memory_id")]
        for start in range(0, len(ids), PAGE):
            batch = ids[start : start + PAGE]
            records = index.get(batch)
            marks = ",".join("?" * len(batch))
            by_memory: dict[str, list[tuple[int, list[float]]]] = {}
            for chunk_id, memory_id, blob in vdb.execute(
                f"SELECT chunk_id, memory_id, vector FROM vectors WHERE memory_id IN ({marks})", batch
            ):
                vec = list(struct.unpack(f"<{len(blob) // 4}f", blob))
                by_memory.setdefault(memory_id, []).append((int(chunk_id.rpartition("#")[2]), vec))
            kept = [records[m] for m in batch if m in records]
            store.upsert(kept, [[v for _, v in sorted(by_memory[r.id])] for r in kept])
            done += len(kept)
        return {"memories": done, "vectors": store.count()}
    finally:
        client.close()
        index.close()
        vdb.close()


def mark_all_unembedded(keyword: Path) -> None:
    """Leave every memory to be embedded again at start (vectors go to a Chroma server, not restored here)."""
    with closing(sqlite3.connect(keyword)) as db, db:
        db.execute("UPDATE memories SET embedded = 0")
