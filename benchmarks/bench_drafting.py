"""`python -m benchmarks.bench_drafting`: speculative decoding (``model.draft``) measured, per bundled model,
draft mode and prompt kind, in one alternating run.

Modes: ``none``; ``lookup`` (prompt lookup); a draft model (``qwen0.5b`` for ``qwen1.5b``). Prompt kinds: a
summary of notes given in the prompt (answers copy names, dates and phrases: where lookup pays) and a free
question (nothing to copy). Each mode runs as a daemon over HTTP (its own process, the daemon's own
streaming path); with ``--llama-server PATH`` llama.cpp's server runs next to each mode with the matching
options (``--spec-type ngram-simple`` for lookup, ``--model-draft`` for a draft model), over the same client.
Rounds alternate every peer and prompt, so the machine's drift hits them alike. Decode speed is
(completion tokens - 1) / (last text chunk - first text chunk), tokens from the final ``usage`` chunk.

The acceptance rate (draft tokens kept / proposed) of the daemon's modes is read in process after the rounds
(one greedy run per model, mode and prompt; the same backend the daemon builds); llama-server's from its
``timings`` (``draft_n``, ``draft_n_accepted``). Whether each mode's text equals ``none``'s is shown too
(greedy: it should, but for a near-tie that a batched evaluation can flip).
"""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.bench_chat import _stamps_of, stream_raw, wait_healthy

SYSTEM = "You are a helpful personal assistant running privately on the user's own device. Answer briefly and plainly."
NOTES = """\
Meeting notes, Tuesday 3 March, garden committee of Linden Street.
Present: Ana Ruiz (chair), Tom Becker, Priya Nair, Jonas Weber, Mei Chen.
1. The spring planting day is moved from Saturday 14 March to Saturday 21 March, 10:00 to 14:00, because the
   compost delivery from Green Valley Farm arrives on 19 March. Tom Becker collects the 40 bags of compost.
2. The budget for this year is 1,250 euros: 600 euros for seeds and young plants, 400 euros for the new
   rain barrel and its stand, 250 euros kept for repairs. Priya Nair keeps the accounts and will send the
   receipts to the city by 31 March.
3. The tool shed lock is broken. Jonas Weber will buy a new padlock and give a key to every member before the
   planting day. Until then the key stays with Mei Chen at number 12.
4. Watering rota from April: Ana on Mondays, Tom on Wednesdays, Priya on Fridays, Jonas and Mei on weekends.
5. The next meeting is on Tuesday 7 April at 19:00 in the community room of the library.
"""
PROMPTS = {
    "summary": f"Summarise these meeting notes in a short list, keeping every name, date and amount:\n\n{NOTES}",
    "free": "Explain how the gears of a bicycle help a rider climb a steep hill.",
}
MODES = {
    "smollm2": ("none", "lookup"),
    "qwen0.5b": ("none", "lookup"),
    "qwen1.5b": ("none", "lookup", "qwen0.5b"),
}


def stream(url: str, prompt: str, max_tokens: int, extra: dict[str, object] | None = None) -> dict[str, Any]:
    """One streamed greedy chat completion: decode tok/s, tokens, text and the server's draft timings."""
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
    start, raw, reads = stream_raw(url, messages, max_tokens, extra)
    stamps, tokens = _stamps_of(raw, reads)
    text, timings = _text_and_timings(raw)
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
    return {
        "tokens": tokens,
        "ttft_s": stamps[0] - start if stamps else 0.0,
        "decode_tok_s": (tokens - 1) / span if tokens > 1 and span > 0 else 0.0,
        "text": text,
        "draft_n": timings.get("draft_n"),
        "draft_n_accepted": timings.get("draft_n_accepted"),
    }


def _text_and_timings(raw: bytes) -> tuple[str, dict[str, Any]]:
    from assistant.core.openai_stream import delta_text, iter_chunks

    text: list[str] = []
    timings: dict[str, Any] = {}
    for chunk in iter_chunks(line.decode("utf-8") for line in raw.splitlines()):
        text.append(delta_text(chunk) or "")
        if isinstance(chunk.get("timings"), dict):
            timings = chunk["timings"]
    return "".join(text), timings


def _daemon(model: Path, mode: str, draft_path: Path | None, threads: int, draft_tokens: int, data_dir: Path):  # type: ignore[no-untyped-def]
    from tests.daemon import start_daemon

    draft = str(draft_path) if draft_path is not None else mode
    toml = (
        f'[model]\npath = "{model}"\nn_threads = {threads}\nn_ctx = 4096\nn_batch = 512\n'
        f'draft = "{draft}"\ndraft_tokens = {draft_tokens}\nprompt_cache_mb = 0\n'
        "[memory]\nenabled = false\n[scheduler]\nenabled = false\n"
    )
    return start_daemon(data_dir, config_toml=toml)


def server_args(mode: str, draft_path: Path | None, threads: int, draft_tokens: int) -> list[str]:
    """llama-server's options for a draft mode: its n-gram lookup, or a draft model."""
    if mode == "none":
        return []
    if mode == "lookup":
        return ["--spec-type", "ngram-simple", "--spec-ngram-simple-size-n", "3",
                "--spec-ngram-simple-size-m", str(draft_tokens), "--spec-draft-n-max", str(draft_tokens)]  # fmt: skip
    assert draft_path is not None
    return ["--spec-type", "draft-simple", "--model-draft", str(draft_path), "--spec-draft-n-max", str(draft_tokens),
            "-td", str(threads), "-tbd", str(threads)]  # fmt: skip


@contextlib.contextmanager
def llama_server(binary: str, model: Path, threads: int, args: list[str], log: Path) -> Iterator[str]:
    from tests.daemon import free_port

    port = free_port()
    cmd = [binary, "-m", str(model), "-t", str(threads), "-tb", str(threads), "-c", "4096", "-b", "512"]
    cmd += ["-np", "1", "-fa", "off", "--host", "127.0.0.1", "--port", str(port), *args]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(
            url, proc, 300, lambda: f"llama-server did not start: {' '.join(cmd)}\n{log.read_text(errors='replace')}"
        )
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def in_process(
    model: Path,
    modes: tuple[str, ...],
    drafts: dict[str, Path | None],
    threads: int,
    draft_tokens: int,
    max_tokens: int,
    rounds: int = 2,
) -> dict[str, dict[str, Any]]:
    """Per mode and prompt, in this process: the acceptance rate, tokens per target evaluation, the text,
    and decode tokens per second of CPU time (the process's, prompt excluded, by a draft model too: each
    timed run follows a two-token run of the same prompt), the best of ``rounds`` alternating runs. On a machine shared with
    other work the wall clock measures the queue; with one thread CPU time is what a quiet machine takes."""
    from assistant.config import ModelSettings
    from assistant.llm.llama import LlamaBackend
    from assistant.llm.types import ChatMessage, GenerationParams, collect

    backends = {}
    for mode in modes:
        draft = str(drafts[mode]) if drafts[mode] is not None else mode
        ms = ModelSettings(
            n_threads=threads, n_batch=512, prompt_cache_mb=0, draft=draft, draft_tokens=draft_tokens
        )
        backends[mode] = LlamaBackend.load(model, ms)
    out: dict[str, dict[str, Any]] = {m: {} for m in modes}
    try:
        for _ in range(rounds):
            for kind, prompt in PROMPTS.items():
                messages = [ChatMessage("system", SYSTEM), ChatMessage("user", prompt)]
                for mode, backend in backends.items():
                    # two tokens first: the prompt is evaluated, by a draft model too (at its first proposal)
                    warm = GenerationParams(temperature=0.0, max_tokens=2)
                    collect(backend.stream_chat(messages, warm, threading.Event()))
                    params = GenerationParams(temperature=0.0, max_tokens=max_tokens)
                    start = time.process_time()
                    done = collect(backend.stream_chat(messages, params, threading.Event()))
                    cpu = time.process_time() - start
                    stats = backend.native.last_draft if backend.native is not None else None
                    tokens = done.usage.completion_tokens if done.usage else 0
                    row = out[mode].setdefault(kind, {"cpu_tok_s": 0.0})
                    row.update(
                        text=done.text,
                        tokens=tokens,
                        drafted=stats.drafted if stats else 0,
                        accepted=stats.accepted if stats else 0,
                        steps=stats.steps if stats else tokens,
                    )
                    row["cpu_tok_s"] = max(row["cpu_tok_s"], tokens / cpu if cpu > 0 else 0.0)
    finally:
        for backend in backends.values():
            backend.close()
    return out


def batch_cost(
    name: str, threads: int, sizes: tuple[int, ...] = (1, 2, 3, 5, 9, 17), rounds: int = 5, cpu: bool = False
) -> dict[int, float]:
    """What verifying a batch costs: the median time of one ``llama_decode`` of B tokens with logits for each
    (at depth 200, dropped again after), over that of one token, alternating the sizes each round. ``cpu``:
    the process's CPU time instead of the wall clock (on a machine shared with other work, the wall clock
    measures the queue; with one thread the CPU time is what a quiet machine would take)."""
    clock = time.process_time if cpu else time.perf_counter
    import llama_cpp as C
    from llama_cpp import Llama

    from assistant.config import default_data_dir
    from assistant.llm.drafting import fill_batch
    from assistant.llm.model_file import bundled_model_path

    path = bundled_model_path(default_data_dir(), name)
    llm = Llama(model_path=str(path), n_ctx=1024, n_threads=threads, n_threads_batch=threads, verbose=False)
    ctx, mem = llm.ctx, C.llama_get_memory(llm.ctx)
    prompt = llm.tokenize(NOTES.encode())[:200]
    arr = (C.llama_token * len(prompt))(*prompt)
    C.llama_decode(ctx, C.llama_batch_get_one(arr, len(prompt)))
    batch = C.llama_batch_init(max(sizes), 0, 1)
    times: dict[int, list[float]] = {b: [] for b in sizes}
    try:
        for _ in range(rounds):
            for b in sizes:
                fill_batch(batch, prompt[:b], len(prompt))
                start = clock()
                if C.llama_decode(ctx, batch) != 0:
                    raise RuntimeError("llama_decode failed")
                times[b].append(clock() - start)
                C.llama_memory_seq_rm(mem, 0, len(prompt), -1)
    finally:
        C.llama_batch_free(batch)
        llm.close()
    one = statistics.median(times[sizes[0]])
    return {b: statistics.median(t) / one for b, t in times.items()} | {0: one}


def http_rounds(
    name: str,
    model: Path,
    modes: tuple[str, ...],
    drafts: dict[str, Path | None],
    rounds: int,
    max_tokens: int,
    threads: int,
    draft_tokens: int,
    server: str | None,
    tmp: Path,
) -> dict[str, list[dict[str, Any]]]:
    """``rounds`` alternating streamed runs of every prompt on a daemon per mode (and llama-server's peer)."""
    runs: dict[str, list[dict[str, Any]]] = {}
    if rounds <= 0:
        return runs
    with contextlib.ExitStack() as stack:
        peers: dict[str, tuple[str, dict[str, object]]] = {}
        for mode in modes:
            d = stack.enter_context(
                _daemon(model, mode, drafts[mode], threads, draft_tokens, tmp / f"{name}-{mode}")
            )
            peers[f"daemon {mode}"] = (d.url, {})
            if server:
                args = server_args(mode, drafts[mode], threads, draft_tokens)
                log = tmp / f"{name}-{mode}-server.log"
                url = stack.enter_context(llama_server(server, model, threads, args, log))
                peers[f"llama-server {mode}"] = (url, {"repeat_penalty": 1.1})
        for url, extra in peers.values():
            stream(url, "Say hello.", 8, extra)  # warm up
        for _ in range(rounds):
            for kind, prompt in PROMPTS.items():
                for peer, (url, extra) in peers.items():
                    runs.setdefault(f"{peer} | {kind}", []).append(stream(url, prompt, max_tokens, extra))
    return runs


def _wall(runs: dict[str, list[dict[str, Any]]], peer: str, kind: str) -> dict[str, Any]:
    """The HTTP figures of a peer and prompt: median decode tok/s, the median of its ratios to the same
    server's ``none`` in the same rounds, acceptance (llama-server's timings) and whether the text is none's."""
    rs = runs.get(f"{peer} | {kind}")
    if not rs:
        return {}
    base = runs[f"{peer.rsplit(' ', 1)[0]} none | {kind}"]
    row: dict[str, Any] = {
        "decode_tok_s": statistics.median(r["decode_tok_s"] for r in rs),
        "speedup_vs_none": statistics.median(
            r["decode_tok_s"] / b["decode_tok_s"] for r, b in zip(rs, base, strict=True) if b["decode_tok_s"]
        ),
        "tokens": statistics.median(r["tokens"] for r in rs),
        "same_text_as_none": rs[-1]["text"] == base[-1]["text"],
    }
    if rs[-1]["draft_n"]:
        row["acceptance"] = rs[-1]["draft_n_accepted"] / rs[-1]["draft_n"]
    return row


def bench_model(
    name: str,
    modes: tuple[str, ...],
    rounds: int,
    max_tokens: int,
    threads: int,
    draft_tokens: int,
    server: str | None,
    tmp: Path,
    http: bool = True,
) -> dict[str, Any]:
    from assistant.config import default_data_dir
    from assistant.llm.bundled import BUNDLED
    from assistant.llm.model_file import bundled_model_path

    data = default_data_dir()
    model = bundled_model_path(data, name)
    drafts = {m: bundled_model_path(data, m) if m in BUNDLED else None for m in modes}
    runs = http_rounds(
        name, model, modes, drafts, rounds if http else 0, max_tokens, threads, draft_tokens, server, tmp
    )
    local = in_process(model, modes, drafts, threads, draft_tokens, max_tokens)
    rows = []
    for kind in PROMPTS:
        for mode in modes:
            a = local[mode][kind]
            row: dict[str, Any] = {
                "model": name,
                "peer": f"daemon {mode}",
                "prompt": kind,
                "tokens": a["tokens"],
                "cpu_tok_s": a["cpu_tok_s"],
                "cpu_speedup_vs_none": a["cpu_tok_s"] / local["none"][kind]["cpu_tok_s"],
                "same_text_in_process": a["text"] == local["none"][kind]["text"],
            }
            if mode != "none":
                row["acceptance"] = a["accepted"] / a["drafted"] if a["drafted"] else 0.0
                row["tokens_per_step"] = a["tokens"] / a["steps"] if a["steps"] else None
            rows.append(row | _wall(runs, f"daemon {mode}", kind))
            if server:
                rows.append({"model": name, "peer": f"llama-server {mode}", "prompt": kind}
                            | _wall(runs, f"llama-server {mode}", kind))  # fmt: skip
    return {"model": name, "rows": rows, "runs": runs}


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_drafting", description=__doc__)
    parser.add_argument("--models", default="smollm2,qwen0.5b,qwen1.5b")
    parser.add_argument("--modes", help="comma-separated draft modes for every model (default: per model)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--draft-tokens", type=int, default=8)
    parser.add_argument("--llama-server", metavar="PATH", help="llama.cpp's llama-server binary, as a peer")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--cpu-time", action="store_true", help="--batch-cost in CPU time, not wall time")
    parser.add_argument(
        "--no-http", action="store_true", help="only the in-process runs (CPU time, acceptance)"
    )
    parser.add_argument(
        "--batch-cost", action="store_true", help="only the cost of verifying B tokens at once"
    )
    args = parser.parse_args(argv)
    if args.batch_cost:
        for name in args.models.split(","):
            cost = batch_cost(name, args.threads, cpu=args.cpu_time)
            one = cost.pop(0)
            sizes = ", ".join(f"B={b}: x{c:.2f}" for b, c in cost.items())
            print(f"{name}: one token {one * 1000:.1f} ms; {sizes}", flush=True)
        return 0
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            modes = tuple(args.modes.split(",")) if args.modes else MODES[name]
            results.append(
                bench_model(
                    name,
                    modes,
                    args.rounds,
                    args.max_tokens,
                    args.threads,
                    args.draft_tokens,
                    args.llama_server,
                    Path(tmp),
                    http=not args.no_http,
                )  # fmt: skip
            )
            _print(results[-1])
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def _print(result: dict[str, Any]) -> None:
    out = sys.stdout
    out.write(f"{'model':<10}{'peer':<26}{'prompt':<9}{'decode tok/s':>13}{'x none':>8}{'cpu tok/s':>10}"
              f"{'x none':>8}{'accept':>8}{'tok/step':>9}{'tokens':>7}  same text\n")  # fmt: skip
    for r in result["rows"]:
        acc = f"{r['acceptance']:.2f}" if "acceptance" in r else ""
        tps = f"{r['tokens_per_step']:.2f}" if r.get("tokens_per_step") else ""
        cpu = f"{r['cpu_tok_s']:>10.1f}{r['cpu_speedup_vs_none']:>8.2f}" if "cpu_tok_s" in r else " " * 18
        wall = f"{r['decode_tok_s']:>13.1f}{r['speedup_vs_none']:>8.2f}" if "decode_tok_s" in r else " " * 21
        same = r.get("same_text_as_none", r.get("same_text_in_process"))
        out.write(
            f"{r['model']:<10}{r['peer']:<26}{r['prompt']:<9}{wall}{cpu}{acc:>8}{tps:>9}{r['tokens']:>7.0f}  {same}\n"
        )
    out.flush()


if __name__ == "__main__":
    sys.exit(main())
