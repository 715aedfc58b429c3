"""Errors of the disk under the data dir: full, read-only, or a store damaged beyond opening.

SQLite, SQLAlchemy (the job store), Chroma and plain file writes each report these their own way: an
``OSError`` with an errno, ``sqlite3.OperationalError("database or disk is full")``, a Chroma
``InternalError`` quoting SQLite's message, an SQLAlchemy error wrapping the sqlite3 one. ``storage_error``
reads an exception and its causes and returns the one error a user can act on, or None when the exception
is about something else. The API answers these with 507 (full) or 503 (read-only, damaged) and a message
saying what to do; ``assistant serve`` exits with ``EXIT_STORE_CORRUPT`` when a store is damaged at start,
which the systemd unit does not restart (restarting cannot repair it).
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from assistant.core.errors import AssistantError

EXIT_STORE_CORRUPT = 65  # EX_DATAERR; deploy/assistant.service: RestartPreventExitStatus=65
EXIT_STORAGE = 73  # EX_CANTCREAT: the data dir is full or read-only at start (restarted: space may come back)

_FULL = ("database or disk is full", "no space left on device", "disk quota exceeded", "(code: 13)")
_READ_ONLY = ("readonly database", "read-only file system", "(code: 8)")
_CORRUPT = (
    "database disk image is malformed",
    "file is not a database",
    "(code: 11)",
    "(code: 26)",
    "malformed database schema",
)


class StorageFull(AssistantError):
    status = 507
    type = "storage_error"
    code = "storage_full"
    exit_code = EXIT_STORAGE


class StorageReadOnly(AssistantError):
    status = 503
    type = "storage_error"
    code = "storage_read_only"
    exit_code = EXIT_STORAGE


class StoreCorrupt(AssistantError):
    """A store under the data dir is damaged; ``message`` says which and how to recover."""

    status = 503
    type = "storage_error"
    code = "store_corrupt"
    exit_code = EXIT_STORE_CORRUPT


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def is_corruption(exc: BaseException) -> bool:
    """SQLite (directly, or quoted by Chroma or SQLAlchemy) says the file is not a sound database."""
    return any(any(m in str(e).lower() for m in _CORRUPT) for e in _chain(exc))


def storage_error(exc: BaseException, where: str = "the data dir") -> AssistantError | None:
    """StorageFull or StorageReadOnly when ``exc`` (or a cause) is the disk refusing a write, else None."""
    if isinstance(exc, StorageFull | StorageReadOnly | StoreCorrupt):
        return exc
    for e in _chain(exc):
        text = str(e).lower()
        code = e.errno if isinstance(e, OSError) else None
        if code in (errno.ENOSPC, errno.EDQUOT) or any(m in text for m in _FULL):
            return StorageFull(
                f"the disk holding {where} is full: nothing was saved. Free some space (or move the data "
                "dir to a larger disk) and try again; what was saved before is intact"
            )
        if code == errno.EROFS or any(m in text for m in _READ_ONLY):
            return StorageReadOnly(
                f"{where} is read-only: nothing was saved. Make it writable (a disk remounted read-only "
                "after an error needs a check: fsck, then remount) and try again"
            )
    return None


def startup_problem(exc: BaseException) -> StoreCorrupt | StorageFull | StorageReadOnly | None:
    """What stopped the daemon from opening its stores, as the error to show (with its ``exit_code``), or
    None when ``exc`` is no storage problem. A store that recognised its own damage raised StoreCorrupt
    with its own instructions; SQLite's words for damage anywhere else get the general ones."""
    if isinstance(exc, StoreCorrupt):
        return exc
    found = storage_error(exc)
    if isinstance(found, StorageFull | StorageReadOnly):
        return found
    if is_corruption(exc):
        return StoreCorrupt(
            f"a database under the data dir is damaged ({exc}). Stop the daemon and restore the data dir "
            "from a backup (assistant restore FILE); see docs/operations.md, Recovery"
        )
    return None


@contextmanager
def opening_store(path: Path) -> Iterator[None]:
    """Around the opening of one SQLite store: damage found there raises StoreCorrupt naming the file."""
    try:
        yield
    except Exception as exc:
        if isinstance(exc, StoreCorrupt) or not is_corruption(exc):
            raise
        raise StoreCorrupt(
            f"{path} is damaged ({exc}). Stop the daemon and restore the data dir from a backup "
            "(assistant restore FILE); see docs/operations.md, Recovery"
        ) from exc
