"""`python -m benchmarks.bench_before_after --before DIR`: the daemon of this tree against the daemon of another
checkout (``DIR``: ``git archive <commit> | tar -x -C DIR``) and llama.cpp's llama-server, alternating, for
the two figures of issue 28 that a change to the daemon's request path moves:

- ``--memory-turns N``: one stored conversation of N turns with memory on per daemon (the notes, questions and
  settings of ``bench_chat --memory-turns``), llama-server given the whole history each turn; turn i of
  every peer runs before turn i+1 of any, in an order that rotates from turn to turn, so drift on a shared
  machine hits all peers alike. Medians over turns 2..N of TTFT and decode, and the median of the turns'
  ratios against llama-server. ``--pause S`` (1 s) after every turn of every peer: a user reading the answer,
  and what keeps a daemon's work after its answer (reading the next prompt ahead, assistant.chat.orchestrator)
  out of the next peer's timing. Between two turns of one peer the other peers' turns run too, so each
  daemon is idle for seconds before its next turn: unlike ``bench_chat --memory-turns``, whose client sends
  the next turn at once.
- ``--cold-restart R``: R rounds of the first chat after a restart (``bench_chat --cold-restart``: ~300 prompt
  tokens, the system prompt's state on disk for the daemons), each peer a new process each round, rotating.

The daemon of ``DIR`` runs from that directory (``python -m assistant`` with it as the working directory, so
its packages are imported, not this tree's) with this environment's interpreter and packages.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from assistant.config import Settings
from benchmarks import bench_cold

HERE = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def daemon_from(tree: Path, data_dir: Path, config_toml: str) -> Iterator[str]:
    """``python -m assistant serve`` of the checkout ``tree`` on a free port; yields its URL once healthy."""
    from tests.daemon import free_port, stop, wait_healthy

    data_dir.mkdir(parents=True, exist_ok=True)
    cfg = data_dir / "config.toml"
    cfg.write_text(config_toml)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update({"ASSISTANT_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    env.pop("PYTHONPATH", None)
    log_path = data_dir / f"daemon-{port}.log"
    cmd = [
        sys.executable,
        "-m",
        "assistant",
        "--config",
        str(cfg),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tree)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log_path)
        yield url
    finally:
        stop(proc)


def _rotated(peers: list[Any], i: int) -> list[Any]:
    k = i % len(peers)
    return peers[k:] + peers[:k]


def memory_turns(
    settings: Settings,
    model: Path,
    turns: int,
    before: Path,
    server: str | None,
    pause: float = 1.0,
    after: Path = HERE,
) -> dict[str, Any]:
    ms = settings.model
    toml = bench_cold._daemon_toml(settings, model, 64, memory=True)
    questions = [bench_cold.TURNS[i % len(bench_cold.TURNS)] for i in range(turns)]
    rows: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        urls = {
            "before": stack.enter_context(daemon_from(before, tmp / "before", toml)),
            "after": stack.enter_context(daemon_from(after, tmp / "after", toml)),
        }
        for url in urls.values():
            for note in bench_cold.MEMORY_NOTES:
                httpx.post(
                    url + "/api/memories", json={"text": note, "source": "note"}, timeout=120
                ).raise_for_status()
        conversations: dict[str, str | None] = {"before": None, "after": None}
        history: list[dict[str, str]] = [
            {"role": "system", "content": bench_cold.default_system_text(settings)}
        ]
        srv = stack.enter_context(bench_cold._server(server, model, ms)) if server else None
        if srv is not None:
            rows["llama_server"] = []

        def daemon_turn(name: str, q: str) -> None:
            extra: dict[str, Any] = {"memory": True}
            if conversations[name]:
                extra["conversation_id"] = conversations[name]
            r = bench_cold.first_chat(urls[name], [{"role": "user", "content": q}], 48, extra)
            conversations[name] = r["conversation_id"] or conversations[name]
            rows[name].append(r)

        def server_turn(q: str) -> None:
            assert srv is not None
            history.append({"role": "user", "content": q})
            r = bench_cold.first_chat(srv, history, 48, {"repeat_penalty": ms.repeat_penalty})
            history.append({"role": "assistant", "content": r["text"]})
            rows["llama_server"].append(r)

        for i, q in enumerate(questions):
            peers: list[Callable[[], None]] = [
                functools.partial(daemon_turn, "before", q),
                functools.partial(daemon_turn, "after", q),
            ]
            if srv is not None:
                peers.append(functools.partial(server_turn, q))
            for run in _rotated(peers, i):
                run()
                time.sleep(
                    pause
                )  # a user reading; a daemon's work after its answer stays out of the next timing
    return {"model": model.name, "threads": ms.n_threads, "turns": turns, "rows": rows, **_turn_summary(rows)}


def _turn_summary(rows: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, rs in rows.items():
        follow = rs[1:]
        out[name] = {
            "ttft_ms": 1000 * statistics.median(r["ttft_s"] for r in follow),
            "ttft_mean_ms": 1000 * statistics.mean(r["ttft_s"] for r in follow),
            "decode_tok_s": statistics.median(r["decode_tok_s"] for r in follow),
            "completion_tokens": statistics.median(r["completion_tokens"] for r in follow),
            "prompt_tokens": [follow[0]["prompt_tokens"], follow[-1]["prompt_tokens"]],
        }
    if "llama_server" in rows:
        s = rows["llama_server"][1:]
        for name in ("before", "after"):
            d = rows[name][1:]
            out[name]["ttft_over_server"] = statistics.median(
                a["ttft_s"] / b["ttft_s"] for a, b in zip(d, s, strict=True)
            )
            out[name]["decode_over_server"] = statistics.median(
                a["decode_tok_s"] / b["decode_tok_s"] for a, b in zip(d, s, strict=True)
            )
            out[name]["ttft_over_server_of_medians"] = out[name]["ttft_ms"] / out["llama_server"]["ttft_ms"]
            out[name]["decode_over_server_of_medians"] = (
                out[name]["decode_tok_s"] / out["llama_server"]["decode_tok_s"]
            )
    # The turns' TTFT is bimodal (a turn recalls ~150 tokens of notes or nothing): the median of the turns'
    # ratios says more than the ratio of the medians.
    old, new = rows["before"][1:], rows["after"][1:]
    out["after_over_before"] = {
        key: statistics.median(x[key] / y[key] for x, y in zip(new, old, strict=True))
        for key in ("ttft_s", "decode_tok_s")
    }
    return out


def cold_restart(
    settings: Settings, model: Path, rounds: int, before: Path, server: str | None, after: Path = HERE
) -> dict[str, Any]:
    ms = settings.model
    toml = bench_cold._daemon_toml(settings, model, 64, memory=False)
    user = f"{bench_cold.NOTES}\n\n{bench_cold.QUESTION}"
    system = bench_cold.default_system_text(settings)
    runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        trees = {"before": before, "after": after}
        for name, tree in trees.items():  # priming: the first start of the day writes the system prompt state
            with daemon_from(tree, tmp / name, toml) as url:
                bench_cold.first_chat(url, [{"role": "user", "content": "Hello!"}], 4)

        def daemon(name: str) -> None:
            with daemon_from(trees[name], tmp / name, toml) as url:
                runs[name].append(bench_cold.first_chat(url, [{"role": "user", "content": user}], 16))

        def llama_server() -> None:
            assert server is not None
            with bench_cold._server(server, model, ms) as url:
                messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
                runs["llama_server"].append(
                    bench_cold.first_chat(url, messages, 16, {"repeat_penalty": ms.repeat_penalty})
                )

        peers: list[Callable[[], None]] = [lambda: daemon("before"), lambda: daemon("after")]
        if server:
            runs["llama_server"] = []
            peers.append(llama_server)
        for i in range(rounds):
            for run in _rotated(peers, i):
                run()
    out: dict[str, Any] = {"model": model.name, "threads": ms.n_threads, "rounds": rounds, "runs": runs}
    for name, rs in runs.items():
        out[name] = {
            "ttft_ms": 1000 * statistics.median(r["ttft_s"] for r in rs),
            "prompt_tokens": rs[0]["prompt_tokens"],
        }
    if server:
        s = runs["llama_server"]
        for name in ("before", "after"):
            out[name]["ttft_over_server"] = statistics.median(
                a["ttft_s"] / b["ttft_s"] for a, b in zip(runs[name], s, strict=True)
            )
            out[name]["ttft_over_server_of_medians"] = out[name]["ttft_ms"] / out["llama_server"]["ttft_ms"]
    return out


def render(result: dict[str, Any]) -> str:
    lines = []
    for kind in ("memory_turns", "cold_restart"):
        if kind not in result:
            continue
        r = result[kind]
        lines.append(f"{kind}: model {r['model']}, {r['threads']} threads")
        for name in ("before", "after", "llama_server"):
            if name in r:
                row = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r[name].items()}
                lines.append(f"  {name}: {json.dumps(row)}")
        if "after_over_before" in r:
            ratios = {k: round(v, 3) for k, v in r["after_over_before"].items()}
            lines.append(f"  after / before, median of the turns' ratios: {json.dumps(ratios)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from assistant.config import load_settings
    from assistant.llm.bundled import BUNDLED
    from assistant.llm.model_file import resolve_model_path

    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_before_after", description=__doc__)
    parser.add_argument("--before", required=True, type=Path, help="the other checkout (a directory)")
    parser.add_argument(
        "--after", type=Path, default=HERE, help="the checkout to compare (default: this tree)"
    )
    parser.add_argument("--model", help="a bundled model name or a GGUF path")
    parser.add_argument("--llama-server", metavar="PATH")
    parser.add_argument("--memory-turns", type=int, metavar="N")
    parser.add_argument("--cold-restart", type=int, metavar="ROUNDS")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds after every memory turn")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    settings = load_settings(None)
    if args.model:
        update: dict[str, object] = (
            {"bundled": args.model, "path": None} if args.model in BUNDLED else {"path": Path(args.model)}
        )
        settings = settings.model_copy(update={"model": settings.model.model_copy(update=update)})
    model = resolve_model_path(settings)
    result: dict[str, Any] = {}
    if args.memory_turns:
        result["memory_turns"] = memory_turns(
            settings,
            model,
            args.memory_turns,
            args.before.resolve(),
            args.llama_server,
            args.pause,
            args.after.resolve(),
        )
    if args.cold_restart:
        result["cold_restart"] = cold_restart(
            settings, model, args.cold_restart, args.before.resolve(), args.llama_server, args.after.resolve()
        )
    print(json.dumps(result, indent=2) if args.json else render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
