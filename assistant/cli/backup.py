"""`assistant backup FILE` and `assistant restore FILE [--force]`: the whole data dir as one .tar.gz.

A backup may be taken while the daemon runs. Every SQLite file of the data dir (conversations, memories'
record and keyword index, schedules and their runs, feeds, the notification outbox) is copied with
SQLite's online backup API, so each is a transactionally consistent snapshot: a write is in it whole or
not at all. The files are taken one after another, so a write landing between two snapshots may be in one
and not the other (a chat turn without its memory copy): the state a kill -9 at that instant would leave,
which the daemon's start-up recovery is built for. Memory vectors are exported from Chroma rather than
copied (see ``backup_memory``). Other files are copied as they are; ``models/`` (the bundled model, put
back in place at start) and ``cache/`` (the service's XDG cache) are left out.

The archive holds ``manifest.json`` (format, versions, and each file with its size and sha256), the
data dir under ``data/`` and the exported vectors as ``vectors.sqlite3``. A restore refuses to write into
a data dir that a running process has open (or that a daemon answering at the configured address uses),
refuses a non-empty data dir unless ``--force`` (the old one is then kept beside it, renamed), checks
every file against the manifest before anything is moved into place, and rebuilds the vector index.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import shutil
import socket
import sqlite3
import tarfile
import tempfile
import time
from contextlib import closing
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

from assistant.cli import backup_memory as mem
from assistant.config import Settings, load_settings
from assistant.core.errors import AssistantError
from assistant.core.files import file_sha256
from assistant.core.sqlite_db import PRIVATE_DIR, PRIVATE_FILE

FORMAT = "assistant-backup"
VERSION = 1
SKIPPED_DIRS = ("models", "cache", "memory/chroma")  # models and cache are put back by themselves
KEYWORD = "memory/keyword.sqlite3"
VECTORS = "vectors.sqlite3"


class BackupError(AssistantError):
    """A backup or restore that cannot be done (the message says why and what to do)."""


def register(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("backup", help="back up the whole data dir to a .tar.gz (safe while the daemon runs)")
    b.add_argument("file", type=Path, help="the archive to write, e.g. assistant-2026-01-31.tar.gz")
    b.add_argument("--data-dir", type=Path, help="the data dir to back up (default: the configured one)")
    b.set_defaults(func=run_backup)
    r = sub.add_parser("restore", help="restore a data dir from a backup (the daemon must be stopped)")
    r.add_argument("file", type=Path)
    r.add_argument("--data-dir", type=Path, help="where to restore (default: the configured data dir)")
    r.add_argument("--force", action="store_true", help="replace a non-empty data dir (kept, renamed)")
    r.set_defaults(func=run_restore)


def run_backup(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    started = time.monotonic()
    manifest = create_backup(args.data_dir or settings.data_dir, args.file, settings)
    m, size = manifest["memory"], args.file.stat().st_size
    print(f"backed up {len(manifest['files'])} files ({_mb(manifest['bytes'])}) to {args.file} "
          f"({_mb(size)}) in {time.monotonic() - started:.1f} s; memories {m['memories']}, "
          f"vectors {m['vectors']}, to embed again at start {m['reembed']}")
    return 0


def run_restore(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    started = time.monotonic()
    result = restore_backup(args.file, args.data_dir or settings.data_dir, settings, force=args.force)
    moved = f"; the old data dir is kept as {result['kept']}" if result["kept"] else ""
    print(f"restored {result['files']} files into {result['data_dir']} in {time.monotonic() - started:.1f} s "
          f"(backup of {result['created_at']}); memories {result['memories']}{moved}")
    return 0


def _mb(n: int) -> str:
    return f"{n / 1024**2:.1f} MB"



def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    for dist in ("assistant", "chromadb"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "unknown"
    return out


def _data_files(data_dir: Path) -> list[Path]:
    """Regular files to back up, relative to ``data_dir``: not SQLite's side files, not skipped dirs."""
    out = []
    for path in sorted(data_dir.rglob("*")):
        rel = path.relative_to(data_dir)
        if any(rel.as_posix() == d or rel.as_posix().startswith(d + "/") for d in SKIPPED_DIRS):
            continue
        if path.is_file() and not path.is_symlink() and not path.name.endswith(mem.SQLITE_SIDE_FILES):
            out.append(rel)
    return out


# ---------------------------------------------------------------------------------------------- backup


def create_backup(data_dir: Path, dest: Path, settings: Settings | None = None) -> dict[str, Any]:
    """Write the archive ``dest`` (atomically: a partial archive is never left under that name)."""
    data_dir, dest = data_dir.expanduser().resolve(), dest.expanduser().resolve()
    if not data_dir.is_dir():
        raise BackupError(f"there is no data dir at {data_dir}")
    if dest.is_relative_to(data_dir):
        raise BackupError(f"write the backup outside the data dir it backs up ({data_dir})")
    dest.parent.mkdir(parents=True, exist_ok=True)
    collection = settings.memory.collection if settings else "memories"
    files: list[dict[str, Any]] = []
    memory = {"memories": 0, "vectors": 0, "reembed": 0}
    with tempfile.TemporaryDirectory(prefix=".assistant-backup-", dir=dest.parent) as tmp:
        stage = Path(tmp)
        for rel in _data_files(data_dir):  # SQLite files first: the keyword index before Chroma
            src, dst = data_dir / rel, stage / "data" / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                kind = "sqlite" if mem.is_sqlite(src) else "file"
                if kind == "sqlite":
                    mem.sqlite_snapshot(src, dst)
                else:
                    shutil.copy2(src, dst)
            except FileNotFoundError:
                continue  # removed since the listing (a rotated log, say)
            except sqlite3.Error as exc:
                raise BackupError(f"could not back up {src}: {exc}") from exc
            files.append({"path": f"data/{rel.as_posix()}", "kind": kind})
        chroma, keyword = data_dir / "memory" / "chroma", stage / "data" / KEYWORD
        if keyword.exists():
            if chroma.is_dir():
                if not mem.snapshot_chroma(chroma, stage / "chroma"):
                    raise BackupError("the vector index kept changing while it was copied; try again")
                memory = mem.export_vectors(stage / "chroma", keyword, stage / VECTORS, collection)
            else:  # vectors in a Chroma server: embedded again when restored
                mem.mark_all_unembedded(keyword)
                count = _count_memories(keyword)
                memory = {"memories": count, "vectors": 0, "reembed": count}
            if (stage / VECTORS).exists():
                files.append({"path": VECTORS, "kind": "vectors"})
        for entry in files:
            path = stage / entry["path"]
            entry.update(bytes=path.stat().st_size, sha256=file_sha256(path))
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "host": socket.gethostname(),
            "data_dir": str(data_dir),
            "versions": _versions(),
            "collection": collection,
            "memory": memory,
            "bytes": sum(e["bytes"] for e in files),
            "files": files,
        }
        partial = dest.with_name(dest.name + ".partial")
        fd = os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, PRIVATE_FILE)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            body = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size, info.mtime, info.mode = len(body), int(time.time()), PRIVATE_FILE
            tar.addfile(info, io.BytesIO(body))
            for entry in files:
                tar.add(stage / entry["path"], arcname=entry["path"], filter=_private)
            tar.close()
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, dest)
    return manifest


def _count_memories(keyword: Path) -> int:
    with closing(sqlite3.connect(keyword)) as db:
        return int(db.execute("SELECT COUNT(*) FROM memories").fetchone()[0])


def _private(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = PRIVATE_FILE
    return info


# ---------------------------------------------------------------------------------------------- restore


def processes_using(directory: Path) -> list[int]:
    """Pids of processes (that this user may inspect) with a file under ``directory`` open."""
    import psutil

    directory = directory.resolve()
    pids = []
    for proc in psutil.process_iter():
        try:
            if any(Path(f.path).is_relative_to(directory) for f in proc.open_files()):
                pids.append(proc.pid)
        except (psutil.Error, OSError):
            continue
    return pids


def check_not_in_use(target: Path, settings: Settings | None) -> None:
    """BackupError when a running process has the data dir open, or when a daemon answers at the configured
    address and ``target`` is its configured data dir (its files may be invisible to this user)."""
    pids = processes_using(target) if target.exists() else []
    if pids:
        raise BackupError(f"{target} is in use by process {', '.join(map(str, pids))} (is the daemon running? "
                          "stop it first: systemctl [--user] stop assistant)")
    if settings is not None and settings.data_dir.expanduser().resolve() == target:
        from assistant.cli.doctor import daemon_health

        health = daemon_health(settings)
        if health is not None:
            raise BackupError(f"a daemon (pid {health.get('pid', '?')}) is running on the data dir {target}: "
                              "stop it before restoring")


def _member_path(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise BackupError(f"the archive holds an unsafe path {name!r}")
    return path


def _read_manifest(tar: tarfile.TarFile) -> dict[str, Any]:
    try:
        member = tar.extractfile("manifest.json")
        manifest = json.loads(member.read()) if member else None
    except (KeyError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError("this is not an assistant backup (no manifest.json)")
    if manifest.get("version") != VERSION:
        raise BackupError(f"backup format {manifest.get('version')} is not known to this version")
    return manifest


def _extract_verified(tar: tarfile.TarFile, entries: list[dict[str, Any]], stage: Path) -> None:
    seen: set[PurePosixPath] = set()
    for entry in entries:  # every path checked before anything is written
        rel = _member_path(entry["path"])
        if rel in seen:
            raise BackupError(f"the manifest lists {entry['path']!r} twice: the backup is damaged")
        seen.add(rel)
    for entry in entries:
        rel = _member_path(entry["path"])
        try:
            member = tar.getmember(entry["path"])
        except KeyError:
            raise BackupError(f"the archive lacks {entry['path']}, which its manifest lists") from None
        src = tar.extractfile(member) if member.isfile() else None
        if src is None:
            raise BackupError(f"{entry['path']} in the archive is not a regular file")
        out = stage.joinpath(*rel.parts)
        out.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        h = hashlib.sha256()
        with open(os.open(out, os.O_CREAT | os.O_WRONLY | os.O_EXCL, PRIVATE_FILE), "wb") as f:
            while block := src.read(1 << 20):
                h.update(block)
                f.write(block)
        if h.hexdigest() != entry["sha256"]:
            raise BackupError(f"{entry['path']} does not match its checksum: the backup is damaged")


def restore_backup(archive: Path, target: Path, settings: Settings | None = None, *,
                   force: bool = False) -> dict[str, Any]:
    target = target.expanduser().resolve()
    check_not_in_use(target, settings)
    if target.exists() and (not target.is_dir() or any(target.iterdir())) and not force:
        raise BackupError(f"{target} is not empty: restore into an empty data dir, or add --force to replace "
                          "it (the old one is kept beside it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".assistant-restore-", dir=target.parent))
    try:
        try:
            tar = tarfile.open(archive, "r:gz")
        except (OSError, tarfile.TarError) as exc:
            raise BackupError(f"cannot read {archive}: {exc}") from exc
        with tar:
            manifest = _read_manifest(tar)
            _extract_verified(tar, manifest["files"], stage)
        data = stage / "data"
        data.mkdir(mode=PRIVATE_DIR, exist_ok=True)
        keyword, vectors = data / KEYWORD, stage / VECTORS
        memories = 0
        if keyword.exists():
            if settings is not None and settings.memory.chroma_url:
                mem.mark_all_unembedded(keyword)  # the daemon embeds them into its Chroma server at start
            elif vectors.exists():
                collection = settings.memory.collection if settings else manifest["collection"]
                mem.import_vectors(vectors, keyword, data / "memory" / "chroma", collection)
            memories = _count_memories(keyword)
        for path in [data, *data.rglob("*")]:
            os.chmod(path, PRIVATE_DIR if path.is_dir() else PRIVATE_FILE)
        kept = None
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()
        elif target.exists():
            check_not_in_use(target, settings)  # again, just before the swap
            kept = target.with_name(f"{target.name}.before-restore-{datetime.now():%Y%m%d-%H%M%S}")
            os.replace(target, kept)
        os.replace(data, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return {"data_dir": str(target), "files": len(manifest["files"]), "memories": memories,
            "created_at": manifest["created_at"], "kept": str(kept) if kept else None}
