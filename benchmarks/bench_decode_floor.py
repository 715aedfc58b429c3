"""Where the decode time goes, below the HTTP stream: llama-bench against the same decode through the binding.

    .venv/bin/python -m benchmarks.bench_decode_floor --llama-bench PATH [--rounds 6] [--model smollm2]

Alternating, one run of each per round, same GGUF and threads, 128 tokens:

- ``llama-bench tg128`` at depth 0 and at depth 64 (``-d``: a 64-token prompt already in the KV cache, as
  a chat's answer starts after its prompt), flash attention off and on;
- the binding's ``llama_decode`` of one token at a time on a ``Llama`` context (nothing else: no sampling,
  no text), n_ctx 256 and the daemon's n_ctx, at the same depths, flash attention off and on;
- the daemon's native loop in process (``LlamaBackend.stream_chat``: sampling with the repeat penalty,
  text, stop strings; no HTTP), against the raw decode on the same context.

Same kernels (the binding and llama-bench are built with ``deploy/llama-cmake-args.sh``), so what differs
between the rows is the context size, the depth, flash attention, and the loop's own work.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

N_GEN = 128
DEPTH = 64


def raw_decode(llm: Any, depth: int) -> float:
    """tokens/s of N_GEN one-token ``llama_decode`` calls after ``depth`` tokens (the first call untimed)."""
    import llama_cpp as C

    C.llama_memory_clear(C.llama_get_memory(llm.ctx), True)
    llm.n_tokens = 0
    if depth:
        prompt = (C.llama_token * depth)(*([1] * depth))
        C.llama_decode(llm.ctx, C.llama_batch_get_one(prompt, depth))
    one = (C.llama_token * 1)(1)
    batch = C.llama_batch_get_one(one, 1)
    C.llama_decode(llm.ctx, batch)
    start = time.perf_counter()
    for _ in range(N_GEN - 1):
        C.llama_decode(llm.ctx, batch)
    return (N_GEN - 1) / (time.perf_counter() - start)


def native_loop(backend: Any) -> float:
    from assistant.llm.types import ChatMessage, GenerationParams

    messages = [ChatMessage("system", "You are a helpful assistant."),
                ChatMessage("user", "Tell me a long story about a lighthouse keeper and his cat.")]  # fmt: skip
    stamps: list[float] = []
    tokens = 0
    for d in backend.stream_chat(messages, GenerationParams(max_tokens=N_GEN, temperature=0.0), threading.Event()):
        if d.text:
            stamps.append(time.perf_counter())
        if d.usage:
            tokens = d.usage.completion_tokens
    return (tokens - 1) / (stamps[-1] - stamps[0]) if tokens > 1 and stamps[-1] > stamps[0] else 0.0


def main(argv: list[str] | None = None) -> int:
    from llama_cpp import Llama

    from assistant.config import load_settings
    from assistant.llm.bundled import BUNDLED
    from assistant.llm.llama import LlamaBackend
    from assistant.llm.model_file import resolve_model_path
    from benchmarks.bench_chat import llama_bench_rows

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--llama-bench", required=True, metavar="PATH")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--model", default="smollm2", help="a bundled model name or a GGUF path")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    settings = load_settings(None)
    update: dict[str, object] = (
        {"bundled": args.model, "path": None} if args.model in BUNDLED else {"path": Path(args.model)}
    )
    ms = settings.model.model_copy(update={**update, "n_threads": args.threads, "prompt_cache_mb": 0})
    model = resolve_model_path(settings.model_copy(update={"model": ms}))
    n_ctx = ms.n_ctx

    def ctx(size: int, fa: bool) -> Any:
        return Llama(model_path=str(model), n_ctx=size, n_threads=args.threads, n_batch=ms.n_batch,
                     flash_attn=fa, verbose=False)  # fmt: skip

    contexts = {(256, False): ctx(256, False), (n_ctx, False): ctx(n_ctx, False), (n_ctx, True): ctx(n_ctx, True)}
    backend = LlamaBackend.load(model, ms)
    native_loop(backend)  # warm up
    rows: dict[str, list[float]] = {}

    def add(label: str, value: float) -> None:
        rows.setdefault(label, []).append(value)

    for _ in range(args.rounds):
        for fa in (False, True):
            for depth in (0, DEPTH):
                bench = llama_bench_rows(args.llama_bench, model, args.threads, ms.n_batch, fa,
                                        "-p", "0", "-n", str(N_GEN), "-d", str(depth), "-r", "1")  # fmt: skip
                add(f"llama-bench tg{N_GEN}, depth {depth}, flash attention {'on' if fa else 'off'}",
                    float(bench[0]["avg_ts"]))  # fmt: skip
        add("binding decode, n_ctx 256, depth 0, flash attention off", raw_decode(contexts[(256, False)], 0))
        for (size, fa), llm in contexts.items():
            if size == n_ctx:
                add(f"binding decode, n_ctx {size}, depth {DEPTH}, flash attention {'on' if fa else 'off'}",
                    raw_decode(llm, DEPTH))  # fmt: skip
        add(f"daemon's native loop in process (n_ctx {n_ctx}, flash attention {'on' if ms.flash_attn else 'off'})",
            native_loop(backend))  # fmt: skip
        add(f"binding decode on that context, depth {DEPTH}", raw_decode(backend.llm, DEPTH))
    backend.close()
    print(f"model {model.name}, {args.threads} threads, {N_GEN} tokens, median of {args.rounds} alternating rounds")
    width = max(len(k) for k in rows)
    for label, values in rows.items():
        print(f"{label:<{width}}  median {statistics.median(values):6.1f}  best {max(values):6.1f} tok/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
