"""`python -m benchmarks.bench_stages`: where a chat request's time goes before its first token, stage by stage,
in the real daemon (issue 28).

The daemon runs as ``python -m benchmarks.bench_stages --serve EVENTS -- <assistant arguments>``: before the
CLI starts, the functions named in ``STAGES`` are wrapped so that each call appends one JSON line to
``EVENTS`` (name, start and end on the machine-wide monotonic clock, thread, and for a prefill the prompt
tokens and how many were evaluated). A wrapped name that no longer exists is reported, not fatal. The client
side stamps its requests on the same clock, so each request's stages are the events inside its window.

- ``--memory-turns N``: one conversation of N turns with memory on (``bench_chat --memory-turns``' notes,
  questions and settings), ``--pause S`` between turns (0: the next turn at once, as ``bench_chat`` sends it);
- ``--cold-restart R``: R restarts, each with one first chat of ~300 tokens (``bench_chat --cold-restart``).

Printed: per stage, the median over the requests (turns 2.. for memory turns) of its milliseconds, and of the
tokens a prefill evaluated; the time from the request to the orchestrator (HTTP, routing, validation; the
client's own set-up of ~17 ms for an ``httpx`` client is in it, as in every TTFT here).
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# (module, class, attribute, label): what is timed. Generators are timed to their first text delta too.
STAGES = (
    ("assistant.chat.orchestrator", "ChatService", "prepare", "prepare (all before the model job)"),
    ("assistant.skillkit.skill_choice", "SkillChoice", "choose", "  skill choice (a model call)"),
    ("memory.recall", "MemoryRecall", "recall", "  recall"),
    ("memory.service", "MemoryService", "query_vector", "    embed the question"),
    ("memory.service", "MemoryService", "search", "    search"),
    ("assistant.llm.llama", "LlamaBackend", "_restore_prefix", "model: restore a saved state"),
    ("assistant.llm.native_loop", "NativeLoop", "prefill", "model: prefill"),
    ("assistant.llm.native_loop", "NativeLoop", "save_state", "model: save the state"),
    ("assistant.chat.orchestrator", "ChatService", "finish", "store the turn (SQLite, memory)"),
)
GENERATORS = (("assistant.llm.llama", "LlamaBackend", "stream_chat", "model job: to its first text"),)


def _serve(events: Path, argv: list[str]) -> int:
    out = events.open("a", buffering=1)
    lock = threading.Lock()

    def emit(name: str, start: float, end: float, **extra: Any) -> None:
        row = {"name": name, "start": start, "end": end, "thread": threading.current_thread().name, **extra}
        with lock:
            out.write(json.dumps(row) + "\n")

    def timed(f: Any, name: str) -> Any:
        @functools.wraps(f)
        def call(*a: Any, **k: Any) -> Any:
            start = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                extra = {}
                if name == "model: prefill":  # NativeLoop.prefill(self, tokens, ...): tokens and evaluated
                    extra = {"tokens": len(a[1]), "evaluated": getattr(a[0], "last_prefilled", None)}
                emit(name, start, time.perf_counter(), **extra)

        return call

    def first_text(f: Any, name: str) -> Any:
        @functools.wraps(f)
        def call(*a: Any, **k: Any) -> Iterator[Any]:
            start, waiting = time.perf_counter(), True
            for delta in f(*a, **k):
                if waiting and delta.text:
                    emit(name, start, time.perf_counter())
                    waiting = False
                yield delta

        return call

    for module, cls, attr, name in STAGES + GENERATORS:
        try:
            owner = getattr(importlib.import_module(module), cls)
            wrap = first_text if (module, cls, attr, name) in GENERATORS else timed
            setattr(owner, attr, wrap(getattr(owner, attr), name))
        except (ImportError, AttributeError):
            emit(f"missing: {module}.{cls}.{attr}", 0.0, 0.0)
    from assistant.cli import main as cli

    sys.argv = ["assistant", *argv]
    return int(cli() or 0)


def _start(data: Path, events: Path, config: str) -> tuple[subprocess.Popen[bytes], str]:
    from tests.daemon import free_port, wait_healthy

    (data / "config.toml").write_text(config)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update({"ASSISTANT_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    args = ["--config", str(data / "config.toml"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    log = data / f"daemon-{port}.log"
    with log.open("wb") as f:
        cmd = [sys.executable, "-m", "benchmarks.bench_stages", "--serve", str(events), "--", *args]
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, proc, log)
    return proc, url


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)


def _request(
    url: str, messages: list[dict[str, str]], max_tokens: int, extra: dict[str, Any]
) -> dict[str, Any]:
    from benchmarks.bench_cold import first_chat

    start = time.perf_counter()
    r = first_chat(url, messages, max_tokens, extra)
    return {**r, "start": start, "end": time.perf_counter()}


def breakdown(events: list[dict[str, Any]], requests: list[dict[str, Any]]) -> dict[str, Any]:
    """Per stage, the median ms over ``requests`` of the events in each request's window (summed when a stage
    ran more than once in it: the skill choice's and the chat's prefill are two), and the prefills' tokens."""
    per: dict[str, list[float]] = defaultdict(list)
    for r in requests:
        inside = [e for e in events if r["start"] <= e["start"] <= r["end"]]
        sums: dict[str, float] = defaultdict(float)
        for e in inside:
            sums[e["name"]] += 1000 * (e["end"] - e["start"])
        for e in inside:
            if e["name"] == "model: prefill":
                sums.setdefault("model: prefills, tokens evaluated", 0.0)
                sums["model: prefills, tokens evaluated"] += e.get("evaluated") or 0
        firsts = [e["start"] for e in inside if e["name"] == "prepare (all before the model job)"]
        if firsts:
            sums["request to the orchestrator (HTTP)"] = 1000 * (min(firsts) - r["start"])
        sums["TTFT (client)"] = 1000 * r["ttft_s"]
        for name, value in sums.items():
            per[name].append(value)
    missing = sorted({e["name"] for e in events if e["name"].startswith("missing")})
    return {
        "stages_ms": {k: statistics.median(v) for k, v in per.items()},
        "missing": missing,
        "requests": len(requests),
    }


def run(mode: str, n: int, pause: float) -> dict[str, Any]:
    import httpx

    from assistant.config import load_settings
    from assistant.llm.bundled import BUNDLED
    from assistant.llm.model_file import resolve_model_path
    from benchmarks import bench_cold

    settings = load_settings(None)
    model_arg = os.environ.get("BENCH_MODEL")
    if model_arg:
        update: dict[str, object] = (
            {"bundled": model_arg, "path": None} if model_arg in BUNDLED else {"path": Path(model_arg)}
        )
        settings = settings.model_copy(update={"model": settings.model.model_copy(update=update)})
    model = resolve_model_path(settings)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        events, data = tmp / "events.jsonl", tmp / "data"
        data.mkdir()
        config = bench_cold._daemon_toml(settings, model, 64, memory=mode == "memory")
        requests: list[dict[str, Any]] = []
        if mode == "memory":
            proc, url = _start(data, events, config)
            try:
                for note in bench_cold.MEMORY_NOTES:
                    httpx.post(
                        url + "/api/memories", json={"text": note, "source": "note"}, timeout=120
                    ).raise_for_status()
                conversation = None
                for i in range(n):
                    extra: dict[str, Any] = {"memory": True}
                    if conversation:
                        extra["conversation_id"] = conversation
                    q = bench_cold.TURNS[i % len(bench_cold.TURNS)]
                    r = _request(url, [{"role": "user", "content": q}], 48, extra)
                    conversation = r["conversation_id"] or conversation
                    requests.append(r)
                    time.sleep(pause)
            finally:
                _stop(proc)
            requests = requests[1:]
        else:
            proc, url = _start(data, events, config)  # priming: the system prompt's state is written
            _request(url, [{"role": "user", "content": "Hello!"}], 4, {})
            _stop(proc)
            for _ in range(n):
                proc, url = _start(data, events, config)
                try:
                    user = f"{bench_cold.NOTES}\n\n{bench_cold.QUESTION}"
                    requests.append(_request(url, [{"role": "user", "content": user}], 16, {}))
                finally:
                    _stop(proc)
        rows = [json.loads(line) for line in events.read_text().splitlines() if line.strip()]
    return {
        "model": model.name,
        "threads": settings.model.n_threads,
        "mode": mode,
        **breakdown(rows, requests),
    }


def main(argv: list[str] | None = None) -> int:
    import argparse

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--serve"]:
        return _serve(Path(argv[1]), argv[3:] if argv[2:3] == ["--"] else argv[2:])
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_stages", description=__doc__)
    parser.add_argument("--model", help="a bundled model name or a GGUF path")
    parser.add_argument("--memory-turns", type=int, metavar="N")
    parser.add_argument("--cold-restart", type=int, metavar="R")
    parser.add_argument("--pause", type=float, default=0.0, help="seconds between memory turns")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.model:
        os.environ["BENCH_MODEL"] = args.model
    results = []
    if args.memory_turns:
        results.append(run("memory", args.memory_turns, args.pause))
    if args.cold_restart:
        results.append(run("cold", args.cold_restart, 0.0))
    for r in results:
        if args.json:
            print(json.dumps(r, indent=2))
            continue
        print(f"{r['mode']}: model {r['model']}, {r['threads']} threads, median of {r['requests']} requests")
        for name, ms in r["stages_ms"].items():
            print(f"  {name:<44}{ms:>10.1f}")
        for name in r["missing"]:
            print(f"  ({name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
