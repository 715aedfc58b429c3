"""ONNX Runtime embedder vs the sentence-transformers one, side by side in one run.

    python -m benchmarks.bench_embedder [--data-dir DIR] [--threads 1] [--rounds 3]

Each embedder runs in its own fresh process (so its memory is its own): load time (first embed included),
RSS and PSS after loading (/proc/self/smaps_rollup), embeddings per second for chat-length (~15 words, one
text per call, as a chat query) and document-length (~200 words, batches of 32, as an import) texts, and the
vectors of a fixed set, compared here (max abs difference). The ONNX model is exported first if missing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

WORDS = (
    "the a garden rain sister birthday market apples key door appointment dentist Friday music train station "
    "coffee letter parcel invoice holiday Lisbon recipe garlic olive oil winter tyres router hallway cupboard "
    "meeting project deadline report weather forecast cinema ticket library book neighbour dog walk park"
).split()


def texts(n: int, words: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(words)) + "." for _ in range(n)]


def memory_kb() -> dict[str, int]:
    out = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        parts = line.split()
        if parts[0] in ("Rss:", "Pss:"):
            out[parts[0][:-1].lower()] = int(parts[1])
    return out


def child(kind: str, data_dir: str, threads: int, rounds: int) -> dict[str, Any]:
    import time

    from memory.opening import make_embedder

    e: Any = make_embedder(kind, Path(data_dir), threads=threads)
    started = time.perf_counter()
    e.embed(["load"])
    load_s = time.perf_counter() - started
    mem = memory_kb()
    chat = texts(100, 15, 1)
    docs = texts(128, 200, 2)
    best_chat = best_doc = 0.0
    for _ in range(rounds):
        t = time.perf_counter()
        for s in chat:
            e.embed([s])
        best_chat = max(best_chat, len(chat) / (time.perf_counter() - t))
        t = time.perf_counter()
        for i in range(0, len(docs), 32):
            e.embed(docs[i : i + 32])
        best_doc = max(best_doc, len(docs) / (time.perf_counter() - t))
    check = texts(20, 15, 3) + texts(10, 200, 4) + [" ".join(["word"] * 400)]
    return {"kind": kind, "load_s": load_s, **mem, "chat_per_s": best_chat, "doc_per_s": best_doc,
            "torch": "torch" in sys.modules, "vectors": e.embed(check)}  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", type=Path, help="where models/minilm-onnx is (default: a temp dir)")
    p.add_argument("--threads", type=int, default=1, help="chat-time threads (bulk calls use every core)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        kind, data_dir, threads, rounds = args.child
        print(json.dumps(child(kind, data_dir, int(threads), int(rounds))))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or Path(tmp)
        from memory.onnx_embedder import export_in_child, is_exported, onnx_model_dir

        if not is_exported(onnx_model_dir(data_dir)):
            export_in_child(onnx_model_dir(data_dir))
        results = {}
        for kind in ("onnx", "sentence-transformers"):
            cmd = [sys.executable, "-m", "benchmarks.bench_embedder", "--child", kind, str(data_dir),
                   str(args.threads), str(args.rounds)]  # fmt: skip
            run = subprocess.run(cmd, capture_output=True, text=True, check=True, env=os.environ.copy())
            results[kind] = json.loads(run.stdout.strip().splitlines()[-1])
    import numpy as np

    a = np.asarray(results["onnx"].pop("vectors"))
    b = np.asarray(results["sentence-transformers"].pop("vectors"))
    print(f"cores {os.cpu_count()}, chat-time threads {args.threads}, best of {args.rounds}")
    print(f"{'':24}{'load s':>8}{'RSS MB':>8}{'PSS MB':>8}{'chat/s':>9}{'doc/s':>8}  torch")
    for kind, r in results.items():
        print(f"{kind:24}{r['load_s']:8.2f}{r['rss'] / 1024:8.0f}{r['pss'] / 1024:8.0f}"
              f"{r['chat_per_s']:9.1f}{r['doc_per_s']:8.1f}  {r['torch']}")  # fmt: skip
    print(f"max abs difference of {len(a)} vectors: {float(np.max(np.abs(a - b))):.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
