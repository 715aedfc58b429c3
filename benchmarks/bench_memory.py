"""Memory benchmark through the real daemon's HTTP API: ingest memories/s, hybrid search p50/p95, RSS.

    .venv/bin/python benchmarks/bench_memory.py --sizes 1000,10000,100000 [--data-dir DIR] [--real-model]

Starts `assistant serve` on a free loopback port with a fresh data dir. By default the model backend is
the remote one pointed at a closed port, so no language model is loaded and the RSS is the daemon with
memory (embedder + Chroma + FTS5); --real-model loads the bundled GGUF too. Memories are synthetic
chat-length sentences (10-40 words: 5,000 English words drawn from the embedder's vocabulary, Zipf-like,
plus names, places, times and numbers), seeded. With --turns, the user/assistant ones are chat turns
(conversation ids, 40 turns each), which are indexed with the turns before them and their dates.

--prefill N writes N memories straight into the store before the daemon starts (records and FTS5 through
KeywordIndex, vectors from the hashing embedder of tests/memory_fakes.py, the newest few really embedded
so the start-up vector check passes): search latency at 100k without embedding 100k texts, which takes
hours on a shared CPU. Ingest figures then cover only what goes through the API.

Before and after, from one run: --baseline DIR (a checkout of the code before, e.g. `git worktree add
/tmp/base <commit>`) starts a second daemon from that checkout; both get the same memories and queries,
size by size in turn, and the table shows both.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from tests.daemon import free_port, start_daemon

SUBJECTS = ["I", "My sister", "My brother", "Mum", "Dad", "The landlord", "My boss", "Alice", "Bob", "The kids",
            "Our neighbour", "The dentist", "My friend Sam", "The plumber", "Grandma", "The vet"]
VERBS = ["needs", "wants", "booked", "forgot", "bought", "cancelled", "moved", "fixed", "asked about",
         "recommended", "hates", "loves", "is worried about", "paid for", "borrowed", "returned"]
PLACES = ["Lisbon", "Berlin", "the office", "the garden", "the cottage", "Porto", "the gym", "the station",
          "the school", "the clinic", "the market", "Madrid", "the lake", "the library", "the garage"]
WHEN = ["on Monday", "next week", "tomorrow at 9", "in March", "before the holidays", "every Friday",
        "last night", "this weekend", "at 3pm", "after lunch", "in two weeks", "on the 14th"]


def vocabulary(rng: random.Random, n: int = 5000) -> list[str]:
    """Real English words (whole words of the embedder's vocabulary), so texts tokenise like chat does."""
    from memory.embedder import bundled_model_path

    lines = (bundled_model_path() / "vocab.txt").read_text(encoding="utf-8").split()
    words = sorted({w for w in lines if w.isalpha() and w.islower() and len(w) >= 3})
    return rng.sample(words, n)


def memory_text(rng: random.Random, vocab: list[str]) -> str:
    extra = " ".join(vocab[min(int(rng.paretovariate(1.1)) - 1, len(vocab) - 1) * 7 % len(vocab)]
                     for _ in range(rng.randint(4, 28)))
    return (f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} the {rng.choice(vocab)} at {rng.choice(PLACES)} "
            f"{rng.choice(WHEN)}, {extra}. Ref {rng.randint(100, 99999)}.")


def query_text(rng: random.Random, vocab: list[str]) -> str:
    return rng.choice([
        f"what did {rng.choice(SUBJECTS).lower()} say about the {rng.choice(vocab)}",
        f"when is the {rng.choice(vocab)} at {rng.choice(PLACES)}",
        f"{rng.choice(vocab)} {rng.choice(vocab)} {rng.choice(WHEN)}",
        f"who {rng.choice(VERBS)} something at {rng.choice(PLACES)}",
    ])


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))]


def grow_and_measure(c: httpx.Client, proc: psutil.Process, rng: random.Random, vocab: list[str], have: int,
                     size: int, searches: int, batch: int, turns: bool) -> tuple[int, dict]:
    made = itertools.count(have)

    def item() -> dict:
        n = next(made)
        source = rng.choice(["user", "assistant", "note"])
        out = {"text": memory_text(rng, vocab), "source": source}
        if turns and source != "note":
            out["conversation_id"] = f"conv-{n // 40}"
        return out

    started = time.perf_counter()
    before = have
    while have < size:
        n = min(batch, size - have)
        r = c.post("/api/memories/batch", json={"memories": [item() for _ in range(n)]})
        r.raise_for_status()
        have += n
    ingest_s = time.perf_counter() - started
    added = have - before
    single = []
    for _ in range(20):  # one memory per request, as chat turns and notes arrive
        t = time.perf_counter()
        c.post("/api/memories", json=item()).raise_for_status()
        single.append(time.perf_counter() - t)
    have += 20
    latencies = []
    for i in range(searches + 5):
        t = time.perf_counter()
        c.get("/api/memories/search", params={"q": query_text(rng, vocab), "k": 5}).raise_for_status()
        if i >= 5:  # the first few warm caches
            latencies.append((time.perf_counter() - t) * 1000)
    return have, {
        "memories": have,
        "ingest_per_s_batched": round(added / ingest_s, 1) if added and ingest_s else None,
        "ingest_per_s_single": round(len(single) / sum(single), 1),
        "search_p50_ms": round(statistics.median(latencies), 1),
        "search_p95_ms": round(percentile(latencies, 95), 1),
        "rss_mb": round(proc.memory_info().rss / 2**20),
    }


def prefill(memory_dir: Path, n: int, turns: bool, contexts: bool = True) -> None:
    """``n`` synthetic memories written directly into the store under ``memory_dir`` (seeded). With
    ``contexts``, turns get the BM25 context the service gives them (memory.context), as stored by this code."""
    from assistant.config import default_data_dir
    from memory.keyword import KeywordIndex, MemoryRecord
    from memory.opening import make_embedder
    from memory.service import new_memory_id
    from memory.store import open_vectors
    from tests.memory_fakes import HashingEmbedder

    rng = random.Random(11)
    vocab = vocabulary(rng)
    keyword = KeywordIndex(memory_dir / "keyword.sqlite3")
    vectors = open_vectors(memory_dir / "chroma", None, "memories")
    cheap = HashingEmbedder()
    start = time.time() - n
    before: dict[str, list[str]] = {}
    for first in range(0, n, 2000):
        records = []
        for i in range(first, min(n, first + 2000)):
            source = rng.choice(["user", "assistant", "note"])
            conversation = f"pre-{i // 40}" if turns and source != "note" else None
            provenance = "conversation" if source == "assistant" else "user"
            text = memory_text(rng, vocab)
            context = ""
            if contexts and conversation is not None:
                from memory.context import turn_context

                previous = before.setdefault(conversation, [])
                context = turn_context(previous[-2:], text, start + i)
                previous.append(text)
            records.append(MemoryRecord(new_memory_id(), text, source, conversation, start + i,
                                        {"provenance": provenance}, context))
        vecs = cheap.embed([r.text for r in records])
        if first + 2000 >= n:  # the newest few, which the daemon's start-up check embeds again
            vecs[-8:] = make_embedder("onnx", default_data_dir()).embed([r.text for r in records[-8:]])
        keyword.insert(records, [1] * len(records))
        vectors.upsert(records, [[v] for v in vecs])
        keyword.mark_embedded(r.id for r in records)
    keyword.close()


def run(sizes: list[int], data_dir: Path, real_model: bool, searches: int, batch: int, *, turns: bool = False,
        baseline: Path | None = None, prefilled: int = 0) -> list[dict]:
    """Rows of measurements; with ``baseline``, each size is measured on the baseline daemon, then on this
    one (same seeds: the same memories and queries), rows labelled ``code``."""
    config = "" if real_model else (
        f'[model]\nbackend = "openai"\nbase_url = "http://127.0.0.1:{free_port()}/v1"\nremote_model = "none"\n'
    )
    codes: list[tuple[str, Path | None]] = [("before", baseline)] if baseline else []
    codes.append(("this", None))
    rows = []
    if prefilled:  # before any daemon starts: the baseline's store as the code before wrote it (no contexts)
        for name, code in codes:
            prefill((data_dir / name if baseline else data_dir) / "memory", prefilled, turns, contexts=code is None)
    with contextlib.ExitStack() as stack:
        daemons = []
        for name, code in codes:
            here = Path.cwd()
            if code is not None:
                os.chdir(code)  # `python -m assistant` imports the package from its working directory
            try:
                d = stack.enter_context(start_daemon(data_dir / name if baseline else data_dir, config_toml=config))
            finally:
                os.chdir(here)
            c = stack.enter_context(httpx.Client(base_url=d.url, timeout=300))
            have = c.get("/api/memories", params={"limit": 1}).json()["total"]  # --data-dir may be reused
            if have:
                print(f"{name}: reusing {have} memories", flush=True)
            rng = random.Random(7)
            vocab = vocabulary(rng)
            daemons.append([name, c, psutil.Process(d.proc.pid), rng, vocab, have])
        for size in sizes:
            for entry in daemons:
                name, c, proc, rng, vocab, have = entry
                entry[5], row = grow_and_measure(c, proc, rng, vocab, have, size, searches, batch, turns)
                row = {"code": name, **row}
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--data-dir", type=Path)
    ap.add_argument("--real-model", action="store_true")
    ap.add_argument("--searches", type=int, default=200)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--turns", action="store_true", help="user/assistant memories are chat turns (conversation ids)")
    ap.add_argument("--baseline", type=Path, help="a checkout of the code before: measured too, size by size")
    ap.add_argument("--prefill", type=int, default=0, help="memories written straight into the store first")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        rows = run(sizes, args.data_dir or Path(tmp), args.real_model, args.searches, args.batch,
                   turns=args.turns, baseline=args.baseline, prefilled=args.prefill)
    print(f"{'code':>6} {'memories':>9} {'ingest/s (batch)':>17} {'ingest/s (single)':>18} {'p50 ms':>7} {'p95 ms':>7} "
          f"{'RSS MB':>7}")
    for r in rows:
        print(f"{r['code']:>6} {r['memories']:>9} {str(r['ingest_per_s_batched']):>17} {r['ingest_per_s_single']:>18} "
              f"{r['search_p50_ms']:>7} {r['search_p95_ms']:>7} {r['rss_mb']:>7}")


if __name__ == "__main__":
    main()
