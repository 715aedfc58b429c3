"""How many threads llama.cpp gets, and its batch, chosen for the machine at start (``model.n_threads`` and
``model.n_batch`` in the config override the choice; `assistant doctor` shows it and why).

Threads: one per core this process may run on (``os.sched_getaffinity``), counting

- on a big.LITTLE CPU only the big cores (``/sys/devices/system/cpu/cpuN/cpu_capacity``, else
  ``cpufreq/cpuinfo_max_freq``, where the kernel reports them): llama.cpp splits each matrix evenly across
  its threads and waits for the slowest, so a little core holds the big ones back;
- one thread per physical core (``topology/core_id`` within ``physical_package_id``): the second thread
  of an SMT core shares the first one's vector units, which generation keeps busy.

No core is left free for the event loop: it streams an answer in about 20 ms of CPU per request against
1.3 s per model thread (docs/benchmarks.md, thread CPU times from ``/proc``), and on two cores a thread
less would halve the speed.

Batch: 512 prompt tokens per llama.cpp batch with two threads or more, 256 with one: the fastest prefill
in the ``bench_chat --prefill`` sweep at each (docs/benchmarks.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CPU_ROOT = Path("/sys/devices/system/cpu")


@dataclass(frozen=True)
class Choice:
    value: int  # threads, or prompt tokens per batch
    reason: str


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def allowed_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def choose_threads(cpus: list[int] | None = None, root: Path = CPU_ROOT) -> Choice:
    """The thread count for llama.cpp on these CPUs (default: the ones this process may run on)."""
    cpus = allowed_cpus() if cpus is None else cpus
    if not cpus:
        return Choice(1, "no CPU list: 1 thread")
    notes = [f"{len(cpus)} CPU(s) this process may run on"]
    chosen = cpus
    for name, what in (("cpu_capacity", "capacity"), ("cpufreq/cpuinfo_max_freq", "max frequency")):
        values = {c: _read_int(root / f"cpu{c}" / name) for c in cpus}
        known = {c: v for c, v in values.items() if v is not None}
        if len(known) != len(cpus):
            continue
        top = max(known.values())
        if min(known.values()) < top:
            chosen = [c for c in cpus if known[c] == top]
            notes.append(f"big.LITTLE by {what}: {len(chosen)} big core(s) of {len(cpus)} used")
        break
    cores = {_core_of(root, c) for c in chosen}
    n = max(1, len(cores))
    if n < len(chosen):
        notes.append(f"{len(chosen) - n} SMT sibling(s) left out: one thread per physical core")
    notes.append("none kept free for the event loop (it uses about 2 % of a model thread's CPU)")
    return Choice(n, "; ".join(notes))


def _core_of(root: Path, cpu: int) -> tuple[int | None, int | None, int]:
    """(package, core, -1) for a CPU whose topology the kernel reports (SMT siblings share it), else a key
    of its own."""
    topo = root / f"cpu{cpu}" / "topology"
    core = _read_int(topo / "core_id")
    if core is None:
        return (None, None, cpu)
    return (_read_int(topo / "physical_package_id"), core, -1)


def choose_batch(n_threads: int) -> Choice:
    """The prompt batch (``model.n_batch``) for this many threads, and why (the ``--prefill`` sweep)."""
    if n_threads <= 1:
        return Choice(256, "1 thread: n_batch 256 had the fastest prefill in the --prefill sweep")
    return Choice(512, f"{n_threads} threads: n_batch 512 had the fastest prefill in the --prefill sweep")
