"""A process's memory as RSS, PSS and USS (``psutil.Process.memory_full_info``, which reads
``/proc/<pid>/smaps_rollup`` on Linux). A memory-mapped model is counted whole in the RSS of every process
that maps it; PSS shares it out, so PSS is what the daemon costs. Used by `assistant doctor` and ``/metrics``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any


def memory_info(pid: int | None = None) -> dict[str, Any]:
    """``rss``, ``pss``, ``uss`` and ``swap`` in bytes of ``pid`` (default: this process); PSS and swap are
    None where the system does not report them. Raises psutil's NoSuchProcess / AccessDenied."""
    import psutil

    info = psutil.Process(pid).memory_full_info()
    return {
        "rss": info.rss,
        "pss": getattr(info, "pss", None),
        "uss": info.uss,
        "swap": getattr(info, "swap", None),
    }


# glibc's malloc (mallopt(3)): the parameter numbers of <malloc.h>.
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


@lru_cache(maxsize=1)
def _glibc() -> Any:
    import ctypes
    import ctypes.util
    import platform

    if platform.libc_ver()[0] != "glibc":
        return None
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name else None


def tune_malloc(arenas: int = 2, mmap_threshold: int = 1 << 20) -> bool:
    """Make freed memory go back to the system in a long-running process (glibc only; False elsewhere).

    - At most ``arenas`` malloc arenas: glibc gives every thread its own (up to 8 per core), and memory
      freed in one is not reused by another, so a daemon with many short-lived threads grows.
    - Blocks of ``mmap_threshold`` bytes and more are mapped on their own and unmapped when freed. glibc
      otherwise raises this threshold each time such a block is freed (up to 32 MiB), after which the saved
      prompt states (megabytes each) land in the heap and stay there after they are dropped.

    Call it early, before the threads start (arenas already made are kept)."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(_M_ARENA_MAX, arenas)) and bool(libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold))


def trim_heap() -> bool:
    """Give the free memory at the top of the heaps back to the system (``malloc_trim(0)``; glibc only).
    True when some was released."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
