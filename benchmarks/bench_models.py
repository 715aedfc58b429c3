"""Each bundled model in the real daemon: first-start assembly, ready time, and PSS idle and after one chat, with
the model file's own mapped pages apart from the rest of the daemon (docs/models.md has the figures).

    .venv/bin/python -m benchmarks.bench_models                      # every installed chat model
    .venv/bin/python -m benchmarks.bench_models --model qwen0.5b --rounds 3 --json out.json

Per model, in a scratch data dir: the GGUF is put in place as the daemon's first start does (joined from its
parts and hashed, or hashed in place: "first start" below, done once); then ``rounds`` times the daemon
(``assistant serve``, the default config but for ``model.bundled``: memory on with the ONNX embedder,
scheduler on, feeds off) is started and timed from process start to the first ``/healthz`` 200 ("ready"; the
file is in the page cache by then, as on any start after the first), its PSS read idle 3 s later and after
one chat turn ("What is 17 + 25?", greedy, 32 tokens at most, which also loads the embedder for recall).

PSS is read by mapping (``bench_soak.pss_by_mapping``): "model file" is the PSS of the GGUF's mapped pages
(shared with the page cache, counted once here: PSS); "rest" is everything else (llama.cpp's KV cache and
compute buffers, Python, ONNX Runtime and the embedder, Chroma). The figures are what one process shows on
this machine; they are not a test and nothing asserts on them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.bench_soak import pss_by_mapping
from tests.daemon import start_daemon
from tests.operations.test_load_real import wait_idle

QUESTION = "What is 17 + 25?"


def config(name: str) -> str:
    return (
        "[model]\n"
        f'bundled = "{name}"\n'
        "max_tokens = 32\n"
        "[feeds]\nenabled = false\n"
        "[notify]\ndesktop = false\n"
    )


def split(pid: int) -> dict[str, float]:
    """PSS in MiB: the GGUF's mapped pages, and everything else; and the RSS of the GGUF's pages (PSS shares a
    page among the processes that map it: SmolLM2's file, read in place from the venv, may be mapped by other
    processes too)."""
    import psutil

    by_kind = pss_by_mapping(pid)
    model = by_kind.get("file *.gguf", 0.0)
    rss = sum(m.rss for m in psutil.Process(pid).memory_maps(grouped=False) if m.path.endswith(".gguf")) / 2**20
    return {"model_file_mib": round(model, 1), "rest_mib": round(sum(by_kind.values()) - model, 1),
            "total_mib": round(sum(by_kind.values()), 1), "model_file_rss_mib": round(rss, 1)}  # fmt: skip


def first_start(name: str, data_dir: Path) -> dict[str, Any]:
    from assistant.llm.model_file import bundled_model_path

    t0 = time.perf_counter()
    path = bundled_model_path(data_dir, name)
    return {"seconds": round(time.perf_counter() - t0, 1), "path": str(path), "bytes": path.stat().st_size}


def one_round(name: str, data_dir: Path) -> dict[str, Any]:
    t0 = time.monotonic()
    with start_daemon(data_dir, config_toml=config(name)) as d:
        ready = time.monotonic() - t0
        time.sleep(3)  # idle: let the startup's own threads settle before reading memory
        idle = split(d.proc.pid)
        t1 = time.monotonic()
        r = httpx.post(
            d.url + "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": QUESTION}], "temperature": 0, "max_tokens": 32},
            timeout=300,
        )
        r.raise_for_status()
        chat_s = time.monotonic() - t1
        wait_idle(d.url)
        after = split(d.proc.pid)
        answer = r.json()["choices"][0]["message"]["content"]
    return {"ready_s": round(ready, 2), "idle": idle, "after_chat": after, "chat_s": round(chat_s, 2),
            "answer": answer}  # fmt: skip


def bench(name: str, rounds: int, root: Path) -> dict[str, Any]:
    from assistant.llm.bundled import BUNDLED

    data_dir = root / name
    first = first_start(name, data_dir)
    runs = [one_round(name, data_dir) for _ in range(rounds)]
    med = statistics.median
    return {
        "model": name,
        "file_mb": round(BUNDLED[name].size / 1e6),
        "first_start_assembly_s": first["seconds"],
        "ready_s": med(r["ready_s"] for r in runs),
        "idle": {k: med(r["idle"][k] for r in runs) for k in runs[0]["idle"]},
        "after_chat": {k: med(r["after_chat"][k] for r in runs) for k in runs[0]["after_chat"]},
        "chat_s": med(r["chat_s"] for r in runs),
        "answer": runs[0]["answer"],
        "rounds": runs,
    }


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| model | file | first start (join + sha256) | ready | PSS idle: model file (its RSS) + rest = total | "
        "PSS after one chat: model file + rest = total | answer to \"What is 17 + 25?\" |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        i, a = r["idle"], r["after_chat"]
        lines.append(
            f"| {r['model']} | {r['file_mb']} MB | {r['first_start_assembly_s']} s | {r['ready_s']} s | "
            f"{i['model_file_mib']:.0f} (RSS {i['model_file_rss_mib']:.0f}) + {i['rest_mib']:.0f} = {i['total_mib']:.0f} MiB | "
            f"{a['model_file_mib']:.0f} + {a['rest_mib']:.0f} = {a['total_mib']:.0f} MiB | "
            f"{' '.join(r['answer'].split())[:60]} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from assistant.llm.bundled import BUNDLED

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", action="append", help="a bundled model (repeat); default: every installed chat model")
    p.add_argument("--rounds", type=int, default=1, help="daemon starts per model (medians are reported)")
    p.add_argument("--json", type=Path, help="write the results here too")
    args = p.parse_args(argv)
    names = args.model or [m.name for m in BUNDLED.values() if m.instruct and m.installed()][::-1]
    with tempfile.TemporaryDirectory(prefix="bench-models-") as tmp:
        results = []
        for name in names:
            print(f"[{name}] ...", file=sys.stderr, flush=True)
            results.append(bench(name, args.rounds, Path(tmp)))
            print(json.dumps({k: v for k, v in results[-1].items() if k != "rounds"}), file=sys.stderr, flush=True)
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
