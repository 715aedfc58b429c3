"""`make bench` (`python -m benchmarks.bench_chat`): generation speed through the daemon's HTTP streaming endpoint vs. llama-cpp-python
called directly, on the same prompt, model and threads, in one run; time to first token for both; the
daemon's peak RSS.

Peers, each optional: the daemon with the python loop (``model.generation_loop = "python"``, ``Llama.generate``)
next to the default native loop (``--no-python-loop`` leaves it out), and llama.cpp's own ``llama-server``
(``--llama-server PATH``, built from the same sdist's vendor/llama.cpp with the same CPU flags) over HTTP.
``--prefill`` measures prompt processing (tokens/s over a 512-token prompt) for a sweep of n_batch, threads and
flash attention. ``--llama-bench PATH`` runs llama.cpp's own ``llama-bench`` (pp512 and tg128, same GGUF,
threads and n_batch) so both figures sit next to its kernels' ceiling; it also runs one tg128 (after its own
warm-up) in every round, alternating with the peers, so the decode ratio compares runs that saw the same drift.

Time to first token is measured twice for every HTTP peer: *warm* repeats the same prompt, so its evaluated
tokens are reused from the KV cache (a follow-up turn); *cold* puts a new line in front of the user's message
each round, so everything after the system prompt is evaluated afresh (a new question).

A third figure, decode only (one llama_decode per token through the binding, no sampling, no text), is the
floor the other two stand on. Runs alternate (direct, daemon, floor, direct, ...) so drift on a noisy machine hits both alike; the
median of each is reported, and the best run (the one least disturbed by other work). Decode speed is (tokens - 1) / (time of last token - time of first token).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from assistant.config import Settings
from assistant.core.openai_stream import delta_text, iter_chunks
from assistant.llm.types import ChatMessage

PROMPT = "Write a long, detailed story about a lighthouse keeper who finds a message in a bottle."


@dataclass
class Run:
    tokens: int
    ttft_s: float
    decode_tok_s: float


def _summarise(runs: list[Run]) -> dict[str, float]:
    return {
        "tokens": statistics.median(r.tokens for r in runs),
        "ttft_s": statistics.median(r.ttft_s for r in runs),
        "decode_tok_s": statistics.median(r.decode_tok_s for r in runs),
        # The best run is the one least disturbed by other work on a shared machine.
        "best_decode_tok_s": max(r.decode_tok_s for r in runs),
    }


def _run(stamps: list[float], start: float, tokens: int) -> Run:
    decode = (tokens - 1) / (stamps[-1] - stamps[0]) if tokens > 1 and stamps[-1] > stamps[0] else 0.0
    return Run(tokens, stamps[0] - start, decode)


def bench_direct(llm: object, prompt: str, max_tokens: int, repeat_penalty: float) -> Run:
    """llama-cpp-python's own streaming completion, as a user of the binding would call it."""
    stamps: list[float] = []
    start = time.perf_counter()
    n = 0
    for chunk in llm.create_completion(  # type: ignore[attr-defined]
        prompt, max_tokens=max_tokens, temperature=0.0, repeat_penalty=repeat_penalty, stream=True
    ):
        stamps.append(time.perf_counter())
        n += 1
        _ = chunk["choices"][0]["text"]
    return _run(stamps, start, n)


def bench_decode_only(llm: object, prompt: str, max_tokens: int) -> Run:
    """The floor: llama_decode of one token at a time through the binding, no sampling, no text."""
    tokens = llm.tokenize(prompt.encode(), add_bos=True, special=True)  # type: ignore[attr-defined]
    llm.reset()  # type: ignore[attr-defined]
    start = time.perf_counter()
    llm.eval(tokens)  # type: ignore[attr-defined]
    stamps = [time.perf_counter()]
    for _ in range(max_tokens - 1):
        llm.eval([tokens[-1]])  # type: ignore[attr-defined]
        stamps.append(time.perf_counter())
    # The KV cache still starts with the prompt: the next direct run reuses it, as the daemon reuses its own.
    return _run(stamps, start, max_tokens)


def bench_http(
    url: str,
    max_tokens: int,
    extra: dict[str, object] | None = None,
    system: str | None = None,
    fresh: str | None = None,
) -> Run:
    """One streamed chat completion; ``fresh`` (a line never sent before) goes in front of the user's message.

    Tokens are counted from the final ``usage`` chunk (a chunk may carry more than one token). The client
    only stamps each read of the socket while the stream runs and parses the events after it ended: on two
    cores every millisecond of client work is taken from a model thread, and a JSON parse of each chunk as
    it comes cost 1-3 % of a core (server and peers are measured with the same client)."""
    user = f"{fresh}\n{PROMPT}" if fresh else PROMPT
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    start, raw, reads = stream_raw(url, messages, max_tokens, extra)
    stamps, tokens = _stamps_of(raw, reads)
    if not tokens:
        raise RuntimeError(f"{url} sent no usage chunk: tokens must be counted from usage, not chunks")
    return _run(stamps, start, tokens)


def wait_healthy(url: str, proc: subprocess.Popen[bytes], seconds: float, why: Callable[[], str]) -> None:
    """Wait until ``url``'s /health answers 200; RuntimeError(``why()``) when ``proc`` exits or time is up."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(why())
        time.sleep(0.2)


def stream_raw(
    url: str, messages: list[dict[str, str]], max_tokens: int, extra: dict[str, Any] | None = None,
    timeout: float = 900,
) -> tuple[float, bytes, list[tuple[float, int]]]:
    """One streamed greedy chat completion, read raw: when it was sent, the bytes, and (time, bytes received
    so far) after each read of the socket (``_stamps_of`` turns them into chunk arrival times)."""
    body: dict[str, object] = {
        **(extra or {}),
        "messages": messages,
        "stream": True,
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream_options": {"include_usage": True},
    }
    reads: list[tuple[float, int]] = []
    parts: list[bytes] = []
    received = 0
    start = time.perf_counter()
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=timeout) as resp:
        resp.raise_for_status()
        for part in resp.iter_raw():
            parts.append(part)
            received += len(part)
            reads.append((time.perf_counter(), received))
    return start, b"".join(parts), reads


def _stamps_of(raw: bytes, reads: list[tuple[float, int]]) -> tuple[list[float], int]:
    """The arrival time of each chunk that carries text (the read that completed its event), and the
    completion tokens of the ``usage`` chunk; the events are read by the project's one SSE parser."""
    consumed = 0  # bytes of ``raw`` the parser has read: an event is complete once its blank line is

    def lines() -> Iterator[str]:
        nonlocal consumed
        for line in raw.splitlines(keepends=True):
            consumed += len(line)
            yield line.decode("utf-8").rstrip("\r\n")

    stamps: list[float] = []
    tokens = 0
    r = 0
    for chunk in iter_chunks(lines()):
        if chunk.get("usage"):
            tokens = chunk["usage"]["completion_tokens"]
        if delta_text(chunk):
            while r < len(reads) - 1 and reads[r][1] < consumed:
                r += 1
            stamps.append(reads[r][0])
    return stamps, tokens


def llama_bench_rows(
    binary: str, model_path: Path, threads: int, n_batch: int, flash_attn: bool, *args: str
) -> list[dict[str, Any]]:
    """llama.cpp's llama-bench on the GGUF with these threads, n_batch and flash attention, plus ``args``
    (the tests: ``-p``, ``-n``, ``-d``, ``-r``); its JSON rows."""
    cmd = [binary, "-m", str(model_path), "-t", str(threads), "-b", str(n_batch)]
    cmd += ["-fa", "1" if flash_attn else "0", "-o", "json", *args]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=900).stdout
    return list(json.loads(out))


def bench_llama_bench(binary: str, model_path: Path, ms: Any, flash_attn: bool) -> dict[str, float]:
    """llama.cpp's own llama-bench: pp512 and tg128 tokens/s (mean of 5) on the same GGUF, threads and n_batch."""
    tests = ("-p", "512", "-n", "128", "-r", "5")
    rows = llama_bench_rows(binary, model_path, ms.n_threads, ms.n_batch, flash_attn, *tests)
    result: dict[str, float] = {}
    for row in rows:
        key = f"pp{row['n_prompt']}" if row["n_prompt"] else f"tg{row['n_gen']}"
        result[key] = float(row["avg_ts"])
    return result


def bench_llama_bench_tg(binary: str, model_path: Path, ms: Any, n_gen: int) -> float:
    """One llama-bench decode run (tg``n_gen``, after its own warm-up), for a round of the alternation."""
    tests = ("-p", "0", "-n", str(n_gen), "-r", "1")
    rows = llama_bench_rows(binary, model_path, ms.n_threads, ms.n_batch, ms.flash_attn, *tests)
    return float(rows[0]["avg_ts"])


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _daemon(settings: Settings, model_path: Path, data_dir: Path, loop: str = "native", interval_ms: int | None = None):  # type: ignore[no-untyped-def]
    from tests.daemon import start_daemon

    interval = settings.server.stream_interval_ms if interval_ms is None else interval_ms
    toml = (
        f"[server]\nstream_interval_ms = {interval}\n"
        f'[model]\npath = "{model_path}"\nn_threads = {settings.model.n_threads}\nn_ctx = {settings.model.n_ctx}\n'
        f'n_batch = {settings.model.n_batch}\ngeneration_loop = "{loop}"\n'
        f"flash_attn = {'true' if settings.model.flash_attn else 'false'}\n"
        f"prompt_cache_mb = 0\n[memory]\nenabled = false\n[scheduler]\nenabled = false\n"
    )
    return start_daemon(data_dir, config_toml=toml)


@contextlib.contextmanager
def _llama_server(binary: str, model_path: Path, ms: Any, *extra: str) -> Iterator[str]:
    """llama.cpp's own server on the same GGUF and threads, one slot, on a free loopback port (``extra``: more
    of its arguments)."""
    from tests.daemon import free_port

    port = free_port()
    cmd = [
        binary,
        "-m",
        str(model_path),
        "-t",
        str(ms.n_threads),
        "-tb",
        str(ms.n_threads),
        "-c",
        str(ms.n_ctx),
    ]
    cmd += ["-b", str(ms.n_batch), "-np", "1", "-fa", "on" if ms.flash_attn else "off"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, 120, lambda: f"llama-server did not start: {' '.join(cmd)}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def bench_prefill(model_path: Path, ms: Any, n_prompt: int = 512) -> list[dict[str, float]]:
    """Prompt processing tokens/s over an ``n_prompt``-token prompt for each n_batch and thread count."""
    import threading

    from llama_cpp import Llama

    from assistant.llm.llama import llama_kwargs
    from assistant.llm.native_loop import NativeLoop

    rows = []
    from assistant.config import default_threads

    for threads, n_batch, flash_attn in itertools.product(
        sorted({1, ms.n_threads, default_threads()}), (64, 128, 256, 512), (False, True)
    ):
        update = {"n_threads": threads, "n_batch": n_batch, "flash_attn": flash_attn}
        kw = llama_kwargs(model_path, ms.model_copy(update=update))
        llm = Llama(**{**kw, "n_ctx": max(ms.n_ctx, n_prompt + 8)})
        loop = NativeLoop(llm)
        tokens = [llm.token_bos()] + (llm.tokenize(PROMPT.encode(), add_bos=False) * 64)[: n_prompt - 1]
        best = 0.0
        for _ in range(3):
            llm.n_tokens = 0
            start = time.perf_counter()
            loop.prefill(tokens, n_batch, threading.Event())
            best = max(best, n_prompt / (time.perf_counter() - start))
        rows.append({"threads": threads, "n_batch": n_batch, "flash_attn": flash_attn, "prefill_tok_s": best})
        llm.close()
    return rows


def main_bench(
    settings: Settings,
    rounds: int,
    max_tokens: int,
    as_json: bool,
    python_loop: bool = True,
    llama_server: str | None = None,
    prefill: bool = False,
    llama_bench: str | None = None,
    per_token: bool = False,
) -> int:
    from llama_cpp import Llama

    from assistant.llm.llama import LlamaBackend, llama_kwargs
    from assistant.llm.model_file import resolve_model_path

    model_path = resolve_model_path(settings)
    ms = settings.model
    # The daemon formats the chat prompt; the direct run gets exactly the same prompt text.
    backend = LlamaBackend.load(model_path, ms.model_copy(update={"prompt_cache_mb": 0}))
    system = "You are a helpful personal assistant running privately on the user's own device. Answer briefly and plainly."
    prompt = backend.formatter([ChatMessage("system", system), ChatMessage("user", PROMPT)]).text
    backend.close()
    llm = Llama(**llama_kwargs(model_path, ms))  # the same arguments the daemon uses
    runs: dict[str, list[Run]] = {
        k: [] for k in ("decode_only", "direct", "http", "http_per_token", "http_python_loop", "llama_server")
    }
    cold: dict[str, list[Run]] = {k: [] for k in ("http", "llama_server")}
    tg_rounds: list[float] = []  # llama-bench tg<max_tokens>, one run a round, alternating with the peers
    server_extra: dict[str, object] = {"repeat_penalty": ms.repeat_penalty}
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        daemon = stack.enter_context(_daemon(settings, model_path, tmp / "native"))
        old = (
            stack.enter_context(_daemon(settings, model_path, tmp / "python", "python"))
            if python_loop
            else None
        )
        each = stack.enter_context(_daemon(settings, model_path, tmp / "each", interval_ms=0)) if per_token else None
        srv = stack.enter_context(_llama_server(llama_server, model_path, ms)) if llama_server else None
        bench_http(daemon.url, 8)  # warm up all
        if each is not None:
            bench_http(each.url, 8)
        if old is not None:
            bench_http(old.url, 8)
        if srv is not None:
            bench_http(srv, 8, server_extra, system)
        bench_direct(llm, prompt, 8, ms.repeat_penalty)
        for i in range(rounds):
            fresh = f"(Question {i + 1} of this run, asked at {time.time():.6f}.)"
            runs["direct"].append(bench_direct(llm, prompt, max_tokens, ms.repeat_penalty))
            runs["http"].append(bench_http(daemon.url, max_tokens))
            cold["http"].append(bench_http(daemon.url, 8, fresh=fresh))
            if each is not None:
                runs["http_per_token"].append(bench_http(each.url, max_tokens))
            if old is not None:
                runs["http_python_loop"].append(bench_http(old.url, max_tokens))
            if srv is not None:
                runs["llama_server"].append(bench_http(srv, max_tokens, server_extra, system))
                cold["llama_server"].append(bench_http(srv, 8, server_extra, system, fresh=fresh))
            runs["decode_only"].append(bench_decode_only(llm, prompt, max_tokens))
            if llama_bench:
                tg_rounds.append(bench_llama_bench_tg(llama_bench, model_path, ms, max_tokens))
        rss = peak_rss_mib(daemon.proc.pid)
    llm.close()
    d, h = _summarise(runs["direct"]), _summarise(runs["http"])
    result: dict[str, Any] = {
        "model": model_path.name,
        "threads": ms.n_threads,
        "n_batch": ms.n_batch,
        "flash_attn": ms.flash_attn,
        "max_tokens": max_tokens,
        "rounds": rounds,
        "ratio_decode_http_over_direct": h["decode_tok_s"] / d["decode_tok_s"] if d["decode_tok_s"] else None,
        "ratio_best_http_over_direct": h["best_decode_tok_s"] / d["best_decode_tok_s"]
        if d["best_decode_tok_s"]
        else None,
        "daemon_peak_rss_mib": rss,
        "runs": {k: [asdict(r) for r in v] for k, v in runs.items()},
        "cold_runs": {k: [asdict(r) for r in v] for k, v in cold.items()},
    }
    labels = {
        "decode_only": "llama.cpp decode only (floor)",
        "direct": "llama-cpp-python direct",
        "http": "daemon HTTP stream (native loop)",
        "http_per_token": "daemon, a chunk per token",
        "http_python_loop": "daemon HTTP stream (python loop)",
        "llama_server": "llama-server HTTP stream",
    }
    rows: list[tuple[str, dict[str, float], float | None]] = []
    for key, label in labels.items():
        if runs[key]:
            result[key] = _summarise(runs[key])
            cold_ttft = statistics.median(r.ttft_s for r in cold[key]) if cold.get(key) else None
            if cold_ttft is not None:
                result[key]["cold_ttft_s"] = cold_ttft
            rows.append((label, result[key], cold_ttft))
    if runs["llama_server"]:
        s = result["llama_server"]
        result["ratio_daemon_over_llama_server"] = h["decode_tok_s"] / s["decode_tok_s"]
        result["ratio_daemon_over_llama_server_per_round"] = statistics.median(
            a.decode_tok_s / b.decode_tok_s for a, b in zip(runs["http"], runs["llama_server"], strict=True)
        )
    if llama_bench:
        result["llama_bench"] = bench_llama_bench(llama_bench, model_path, ms, ms.flash_attn)
        tg = result["llama_bench"].get("tg128")
        if tg:
            result["ratio_daemon_over_llama_bench_tg128"] = h["decode_tok_s"] / tg
        if tg_rounds:
            result["llama_bench_tg_rounds"] = tg_rounds
            result["ratio_daemon_over_llama_bench_tg_alternated"] = h["decode_tok_s"] / statistics.median(tg_rounds)
            result["ratio_best_daemon_over_best_llama_bench_tg"] = h["best_decode_tok_s"] / max(tg_rounds)
            # Each round's pair ran within the same minute: the median of the round ratios is the least
            # moved by the machine's slow drifts (single runs of one thing vary by 10-20 % here).
            result["ratio_daemon_over_llama_bench_tg_per_round"] = statistics.median(
                r.decode_tok_s / tg for r, tg in zip(runs["http"], tg_rounds, strict=True)
            )
    if prefill:
        result["prefill"] = bench_prefill(model_path, ms)
    if as_json:
        print(json.dumps(result, indent=2))
        return 0
    out = sys.stdout
    fa = "on" if ms.flash_attn else "off"
    out.write(
        f"model {result['model']}, {ms.n_threads} threads, n_batch {ms.n_batch}, flash attention {fa}, "
        f"{max_tokens} tokens, median of {rounds}\n"
    )
    out.write(f"{'path':<34}{'decode tok/s':>14}{'best':>8}{'warm TTFT ms':>14}{'cold TTFT ms':>14}{'tokens':>8}\n")
    for label, row, cold_ttft in rows:
        cold_ms = f"{cold_ttft * 1000:>14.0f}" if cold_ttft is not None else f"{'':>14}"
        out.write(
            f"{label:<34}{row['decode_tok_s']:>14.1f}{row['best_decode_tok_s']:>8.1f}"
            f"{row['ttft_s'] * 1000:>14.0f}{cold_ms}{row['tokens']:>8.0f}\n"
        )
    out.write(
        f"ratio daemon HTTP / direct: median {result['ratio_decode_http_over_direct']:.3f}, "
        f"best {result['ratio_best_http_over_direct']:.3f}\n"
    )
    if "ratio_daemon_over_llama_server" in result:
        out.write(f"ratio daemon HTTP / llama-server HTTP: {result['ratio_daemon_over_llama_server']:.3f} "
                  f"(median of the rounds' ratios {result['ratio_daemon_over_llama_server_per_round']:.3f})\n")
    if "llama_bench" in result:
        lb = result["llama_bench"]
        out.write(f"llama-bench: pp512 {lb.get('pp512', 0):.0f} tok/s, tg128 {lb.get('tg128', 0):.1f} tok/s\n")
        if "ratio_daemon_over_llama_bench_tg128" in result:
            out.write(f"ratio daemon HTTP / llama-bench tg128 (run once, after the rounds): "
                      f"{result['ratio_daemon_over_llama_bench_tg128']:.3f}\n")
    if tg_rounds:
        out.write(
            f"llama-bench tg{max_tokens}, one run in each round (alternating): median "
            f"{statistics.median(tg_rounds):.1f}, best {max(tg_rounds):.1f} tok/s\n"
            f"ratio daemon HTTP / llama-bench tg{max_tokens} alternated: median "
            f"{result['ratio_daemon_over_llama_bench_tg_alternated']:.3f}, best "
            f"{result['ratio_best_daemon_over_best_llama_bench_tg']:.3f}, median of the rounds' ratios "
            f"{result['ratio_daemon_over_llama_bench_tg_per_round']:.3f}\n"
        )
    out.write(f"daemon peak RSS: {rss:.0f} MiB\n")
    for p in result.get("prefill", []):
        out.write(
            f"prefill {p['threads']} threads, n_batch {p['n_batch']}, flash attention "
            f"{'on' if p['flash_attn'] else 'off'}: {p['prefill_tok_s']:.0f} tok/s\n"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    from assistant.config import load_settings

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_chat",
        description="tokens/s through the daemon's HTTP stream vs. llama-cpp-python direct, in one run",
    )
    parser.add_argument("--config", help="TOML config file (default: $ASSISTANT_CONFIG)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--model", help="a bundled model name (smollm2, gemma3) or a GGUF path")
    parser.add_argument("--threads", type=int, help="model.n_threads for every peer")
    parser.add_argument("--n-batch", type=int, help="model.n_batch for every peer")
    parser.add_argument("--no-python-loop", action="store_true", help="leave out the python-loop daemon")
    parser.add_argument("--per-token", action="store_true",
                        help="also a daemon that sends each token in its own chunk (server.stream_interval_ms 0)")  # fmt: skip
    parser.add_argument(
        "--llama-server", metavar="PATH", help="add llama.cpp's llama-server binary as a peer"
    )
    parser.add_argument(
        "--prefill", action="store_true", help="sweep prefill tokens/s over n_batch, threads and flash attention"
    )
    parser.add_argument("--llama-bench", metavar="PATH", help="run llama.cpp's llama-bench (pp512, tg128) too")
    parser.add_argument("--flash-attn", choices=("on", "off"), help="model.flash_attn for every peer")
    parser.add_argument("--cold-restart", action="store_true",
                        help="time to first token of a ~300-token first chat after a restart (benchmarks.bench_cold)")  # fmt: skip
    parser.add_argument("--memory-turns", type=int, metavar="N",
                        help="TTFT and decode per turn of an N-turn stored conversation, memory on (benchmarks.bench_cold)")  # fmt: skip
    args = parser.parse_args(argv)
    settings = load_settings(args.config)
    update: dict[str, object] = {}
    if args.model:
        from assistant.llm.bundled import BUNDLED

        update.update(
            {"bundled": args.model, "path": None} if args.model in BUNDLED else {"path": Path(args.model)}
        )
    if args.threads:
        update["n_threads"] = args.threads
    if args.n_batch:
        update["n_batch"] = args.n_batch
    if args.flash_attn:
        update["flash_attn"] = args.flash_attn == "on"
    if update:
        settings = settings.model_copy(update={"model": settings.model.model_copy(update=update)})
    if args.cold_restart or args.memory_turns:
        return _main_cold(settings, args)
    return main_bench(
        settings,
        args.rounds,
        args.max_tokens,
        args.json,
        python_loop=not args.no_python_loop,
        llama_server=args.llama_server,
        prefill=args.prefill,
        llama_bench=args.llama_bench,
        per_token=args.per_token,
    )


def _main_cold(settings: Settings, args: Any) -> int:
    """``--cold-restart`` and ``--memory-turns`` (benchmarks.bench_cold)."""
    from assistant.llm.model_file import resolve_model_path
    from benchmarks import bench_cold

    model_path = resolve_model_path(settings)
    results: dict[str, Any] = {}
    if args.cold_restart:
        results["cold_restart"] = bench_cold.main_cold_restart(settings, model_path, args.rounds, args.llama_server)
    if args.memory_turns:
        results["memory_turns"] = bench_cold.main_memory_turns(
            settings, model_path, args.memory_turns, args.llama_server
        )
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    if "cold_restart" in results:
        print(bench_cold.render_cold(results["cold_restart"]))
    if "memory_turns" in results:
        print(bench_cold.render_memory(results["memory_turns"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
