"""The one way the daemon opens its SQLite files: durable and safe to share between threads."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_durable(path: Path, schema: str) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit ``BEGIN``), WAL journal,
    ``synchronous=FULL`` (a committed write survives kill -9 and power loss), foreign keys on, and
    ``schema`` applied. Callers serialise use with their own lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    db.executescript(schema)
    return db
