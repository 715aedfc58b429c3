"""`python -m benchmarks.bench_fit`: how long a 3,000-turn history takes to fit into the context.

The embedded backend (the bundled model) is asked for one token after a long conversation; the figure is
the time of the fit alone (format, tokenize, drop the oldest turns), with the number of ``llm.tokenize``
and formatter calls it made, then the wall time of a whole answer (fit, evaluate the kept prompt, one
token). The remote backend is timed against a small fake
OpenAI server on 127.0.0.1 that reports how many messages and characters it was sent.

    python -m benchmarks.bench_fit [--turns 3000] [--words 20] [--n-ctx 4096] [--skip-llama] [--skip-remote] [--fit-only]
"""

from __future__ import annotations

import argparse
import inspect
import json
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from assistant.config import ModelSettings
from assistant.llm.types import ChatMessage, GenerationParams, Role, collect


def history(turns: int, words: int) -> list[ChatMessage]:
    msgs = [ChatMessage("system", "You are a helpful assistant.")]
    for i in range(turns):
        role: Role = "user" if i % 2 == 0 else "assistant"
        msgs.append(ChatMessage(role, " ".join(f"turn{i}-word{j}" for j in range(words))))
    msgs.append(ChatMessage("user", "What did we talk about?"))
    return msgs


def _count(fn: Callable[..., Any], box: list[int]) -> Callable[..., Any]:
    def wrapped(*a: Any, **kw: Any) -> Any:
        box[0] += 1
        return fn(*a, **kw)

    return wrapped


def bench_llama(msgs: list[ChatMessage], n_ctx: int, fit_only: bool = False) -> dict[str, Any]:
    from assistant.llm.llama import LlamaBackend
    from assistant.llm.model_file import bundled_model_path

    path = bundled_model_path(Path(tempfile.gettempdir()) / "assistant-bench-fit", "smollm2")
    backend = LlamaBackend.load(path, ModelSettings(n_ctx=n_ctx, prompt_cache_mb=0))
    tokenize_calls, format_calls = [0], [0]
    backend.llm.tokenize = _count(backend.llm.tokenize, tokenize_calls)
    backend.formatter = _count(backend.formatter, format_calls)
    # The fit alone (format + tokenize + drop turns), through the private method either version has.
    fit: Callable[..., Any] = backend._tokens
    start = time.perf_counter()
    if "cancel" in inspect.signature(fit).parameters:
        fit(msgs, 1, threading.Event())
    else:  # the version before linear fitting
        fit(msgs, 1)
    fit_seconds = time.perf_counter() - start
    fit_calls = {"tokenize_calls": tokenize_calls[0], "format_calls": format_calls[0]}
    if fit_only:
        backend.close()
        return {"backend": "llama", "fit_seconds": round(fit_seconds, 3), **fit_calls}
    # The whole answer: fit, evaluate the kept prompt, one token.
    params = GenerationParams(max_tokens=1, temperature=0.0)
    start = time.perf_counter()
    out = collect(backend.stream_chat(msgs, params, threading.Event()))
    seconds = time.perf_counter() - start
    backend.close()
    return {
        "backend": "llama",
        "fit_seconds": round(fit_seconds, 3),
        **fit_calls,
        "answer_seconds": round(seconds, 3),
        "prompt_tokens": out.usage.prompt_tokens,
    }


class _FakeOpenAI(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append(body)
        chunk = {"choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]}
        data = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def bench_remote(msgs: list[ChatMessage], n_ctx: int) -> dict[str, Any]:
    from assistant.llm.remote import RemoteBackend

    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        ms = ModelSettings(
            backend="openai", base_url=f"http://127.0.0.1:{server.server_port}", remote_model="m", n_ctx=n_ctx
        )
        backend = RemoteBackend.from_settings(ms)
        start = time.perf_counter()
        collect(backend.stream_chat(msgs, GenerationParams(max_tokens=16), threading.Event()))
        seconds = time.perf_counter() - start
        backend.close()
    finally:
        server.shutdown()
        server.server_close()
    sent = _FakeOpenAI.seen[-1]["messages"]
    return {
        "backend": "remote",
        "answer_seconds": round(seconds, 3),
        "messages_sent": len(sent),
        "chars_sent": sum(len(m["content"]) for m in sent),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--turns", type=int, default=3000)
    ap.add_argument("--words", type=int, default=20)
    ap.add_argument("--n-ctx", type=int, default=4096)
    ap.add_argument("--skip-remote", action="store_true")
    ap.add_argument("--skip-llama", action="store_true")
    ap.add_argument("--fit-only", action="store_true", help="time the fit, not a whole answer")
    args = ap.parse_args()
    msgs = history(args.turns, args.words)
    info = {"turns": args.turns, "chars": sum(len(m.content) for m in msgs), "n_ctx": args.n_ctx}
    if not args.skip_llama:
        print(json.dumps({**info, **bench_llama(msgs, args.n_ctx, args.fit_only)}))
    if not args.skip_remote:
        print(json.dumps({**info, **bench_remote(msgs, args.n_ctx)}))


if __name__ == "__main__":
    main()
