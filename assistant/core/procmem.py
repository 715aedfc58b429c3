"""A process's memory as RSS, PSS and USS (``psutil.Process.memory_full_info``, which reads
``/proc/<pid>/smaps_rollup`` on Linux). A memory-mapped model is counted whole in the RSS of every process
that maps it; PSS shares it out, so PSS is what the daemon costs. Used by `assistant doctor` and ``/metrics``.
"""

from __future__ import annotations

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
