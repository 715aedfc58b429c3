"""The one way the daemon opens its SQLite files: durable and safe to share between threads."""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
PRIVATE_UMASK = 0o077  # what the daemon creates (Chroma's files, APScheduler's job store...) is private


def keep_private(data_dir: Path) -> None:
    """The process creates private files from now on (umask 077: libraries such as Chroma and SQLAlchemy
    create theirs with the umask), and what an earlier version left under ``data_dir`` is made private:
    folders 0700, files 0600 (symbolic links are left alone). `assistant serve` calls it first."""
    os.umask(PRIVATE_UMASK)
    try:
        private_dir(data_dir)
        for root, dirs, files in os.walk(data_dir):
            for name in dirs:
                path = os.path.join(root, name)
                if not os.path.islink(path):
                    os.chmod(path, PRIVATE_DIR)
            for name in files:
                path = os.path.join(root, name)
                if not os.path.islink(path):
                    os.chmod(path, PRIVATE_FILE)
    except OSError as exc:
        if exc.errno != errno.EROFS:
            raise
        # A disk remounted read-only: nothing can be written, so the stores' opening says so clearly next.


def private_file(path: Path) -> Path:
    """``path`` (and its folder) created if missing and readable by its owner only."""
    private_dir(path.parent)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, PRIVATE_FILE))
    os.chmod(path, PRIVATE_FILE)
    return path


def private_dir(path: Path) -> Path:
    """``path`` created if missing and readable by its owner only (conversations and memories are
    private: other local users must not read them)."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    os.chmod(path, PRIVATE_DIR)
    return path


def open_durable(path: Path, schema: str) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit ``BEGIN``), WAL journal,
    ``synchronous=FULL`` (a committed write survives kill -9 and power loss), foreign keys on, and
    ``schema`` applied. Callers serialise use with their own lock."""
    path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, PRIVATE_FILE))  # created private, never widened
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    db.executescript(f"BEGIN;\n{schema}\nCOMMIT;")  # one sync for the whole schema, not one per statement
    return db


class DurableStore:
    """A store on one durable SQLite file (``open_durable``): one connection, every use serialized by one
    lock, writes in explicit transactions (``_write``) that roll back on any error."""

    def __init__(self, path: Path, schema: str) -> None:
        self.path = path
        self._db = open_durable(path, schema)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, serialized with every other use of the connection."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
