"""`make bench` (`python -m benchmarks.bench_chat`): generation speed through the daemon's HTTP streaming endpoint vs. llama-cpp-python
called directly, on the same prompt, model and threads, in one run; time to first token for both; the
daemon's peak RSS.

A third figure, decode only (one llama_decode per token through the binding, no sampling, no text), is the
floor the other two stand on. Runs alternate (direct, daemon, floor, direct, ...) so drift on a noisy machine hits both alike; the
median of each is reported, and the best run (the one least disturbed by other work). Decode speed is (tokens - 1) / (time of last token - time of first token).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

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


def bench_http(url: str, max_tokens: int) -> Run:
    body = {
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": True,
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream_options": {"include_usage": True},
    }
    stamps: list[float] = []
    tokens = 0
    start = time.perf_counter()
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=600) as resp:
        resp.raise_for_status()
        for chunk in iter_chunks(resp.iter_lines()):
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            if delta_text(chunk):
                stamps.append(time.perf_counter())
    return _run(stamps, start, tokens or len(stamps))


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _daemon(settings: Settings, model_path: Path, data_dir: Path):  # type: ignore[no-untyped-def]
    from tests.daemon import start_daemon

    toml = (
        f'[model]\npath = "{model_path}"\nn_threads = {settings.model.n_threads}\nn_ctx = {settings.model.n_ctx}\n'
        f"prompt_cache_mb = 0\n[memory]\nenabled = false\n[scheduler]\nenabled = false\n"
    )
    return start_daemon(data_dir, config_toml=toml)


def main_bench(settings: Settings, rounds: int, max_tokens: int, as_json: bool) -> int:
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
    direct: list[Run] = []
    http: list[Run] = []
    floor: list[Run] = []
    with tempfile.TemporaryDirectory() as tmp, _daemon(settings, model_path, Path(tmp)) as daemon:
        bench_http(daemon.url, 8)  # warm up both
        bench_direct(llm, prompt, 8, ms.repeat_penalty)
        for _ in range(rounds):
            direct.append(bench_direct(llm, prompt, max_tokens, ms.repeat_penalty))
            http.append(bench_http(daemon.url, max_tokens))
            floor.append(bench_decode_only(llm, prompt, max_tokens))
        rss = peak_rss_mib(daemon.proc.pid)
    d, h, f = _summarise(direct), _summarise(http), _summarise(floor)
    result = {
        "model": model_path.name,
        "threads": ms.n_threads,
        "max_tokens": max_tokens,
        "rounds": rounds,
        "decode_only": f,
        "direct": d,
        "http": h,
        "ratio_decode_http_over_direct": h["decode_tok_s"] / d["decode_tok_s"] if d["decode_tok_s"] else None,
        "ratio_best_http_over_direct": h["best_decode_tok_s"] / d["best_decode_tok_s"]
        if d["best_decode_tok_s"]
        else None,
        "daemon_peak_rss_mib": rss,
        "runs": {
            "decode_only": [asdict(r) for r in floor],
            "direct": [asdict(r) for r in direct],
            "http": [asdict(r) for r in http],
        },
    }
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        out = sys.stdout
        out.write(
            f"model {result['model']}, {ms.n_threads} threads, {max_tokens} tokens, median of {rounds}\n"
        )
        out.write(f"{'path':<34}{'decode tok/s':>14}{'best':>8}{'TTFT ms':>10}{'tokens':>8}\n")
        for label, row in (
            ("llama.cpp decode only (floor)", f),
            ("llama-cpp-python direct", d),
            ("daemon HTTP stream", h),
        ):
            out.write(
                f"{label:<34}{row['decode_tok_s']:>14.1f}{row['best_decode_tok_s']:>8.1f}"
                f"{row['ttft_s'] * 1000:>10.0f}{row['tokens']:>8.0f}\n"
            )
        out.write(
            f"ratio HTTP / direct: median {result['ratio_decode_http_over_direct']:.3f}, "
            f"best {result['ratio_best_http_over_direct']:.3f}\n"
        )
        out.write(f"daemon peak RSS: {rss:.0f} MiB\n")
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
    args = parser.parse_args(argv)
    return main_bench(load_settings(args.config), args.rounds, args.max_tokens, args.json)


if __name__ == "__main__":
    sys.exit(main())
