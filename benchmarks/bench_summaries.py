"""Page summaries that keep to the page, and the time each takes, on real pages and a real model.

    python -m benchmarks.bench_summaries --model smollm2 [--pages 20] [--seed 1] [--n-ctx 4096]
        [--input-tokens N] [--map-tokens 96] [--summary-tokens 256] [--style summary] [--json FILE]
    python -m benchmarks.bench_summaries --model /tmp/models/qwen0.5b.gguf

``--pages`` pages are chosen (seeded) from the article-extraction benchmark's 181 real pages
(``../shared/data/pages``), served on 127.0.0.1 by the tests' server and summarized through the real pages
service (assistant.pages.service.PageService: the guarded fetcher, trafilatura, the map/reduce prompts, the
grounding check of assistant.pages.grounding, the retry and the extractive fallback) on the model named
(a bundled model's name, or a GGUF file's path). Printed per page: words, parts read, model calls, prompt
and answer tokens, seconds, which text kept to the page (model / retry / extractive) and what the first
summary said that the page does not. Then: the share of summaries that passed the check on the first try,
after the retry, and falling back; seconds per summary (median, p90); where the time went (prompt tokens
and answer tokens per call). Pages the daemon refuses (paywall teaser, no text) are counted apart.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assistant.config import ModelSettings, PageSettings, Settings
from assistant.llm.types import ChatMessage, Delta, GenerationParams, LLMBackend
from assistant.llm.worker import GenerationWorker
from assistant.pages.budget import meter_for
from assistant.pages.models import PageError
from assistant.pages.read import PageReader, build_fetcher
from assistant.pages.service import INPUT_TOKENS, PageService
from assistant.pages.summarize import Lengths
from benchmarks.bench_extract import DEFAULT_DATA, route_pages
from tests.feeds_server import serve


class TimedBackend:
    """The real backend, recording each call's prompt and answer tokens and its seconds."""

    def __init__(self, backend: LLMBackend) -> None:
        self.backend = backend
        self.name = backend.name
        self.calls: list[dict[str, Any]] = []

    def stream_chat(
        self, messages: list[ChatMessage], params: GenerationParams, cancel: threading.Event
    ) -> Iterator[Delta]:
        start = time.perf_counter()
        call: dict[str, Any] = {"prompt_tokens": 0, "answer_tokens": 0, "seconds": 0.0}
        call["temperature"] = params.temperature
        text: list[str] = []
        for delta in self.backend.stream_chat(messages, params, cancel):
            text.append(delta.text)
            if delta.usage is not None:
                call["prompt_tokens"] = delta.usage.prompt_tokens
                call["answer_tokens"] = delta.usage.completion_tokens
            yield delta
        call["seconds"] = time.perf_counter() - start
        call["text"] = "".join(text)  # the model's raw answer (the JSON keeps the first tries' inventions)
        self.calls.append(call)

    def close(self) -> None:
        pass


def load_backend(model: str, n_ctx: int, threads: int) -> LLMBackend:
    from assistant.llm.llama import LlamaBackend
    from assistant.llm.model_file import bundled_model_path

    path = Path(model).expanduser()
    if not path.suffix == ".gguf":
        path = bundled_model_path(Settings().data_dir, model)
    return LlamaBackend.load(path, ModelSettings(n_ctx=n_ctx, n_threads=threads))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    defaults = PageSettings()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="smollm2", help="a bundled model's name or a GGUF file's path")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--n-ctx", type=int, default=ModelSettings().n_ctx)
    parser.add_argument("--threads", type=int, default=ModelSettings().n_threads, help="model.n_threads")
    parser.add_argument("--map-tokens", type=int, default=defaults.map_tokens)
    parser.add_argument("--summary-tokens", type=int, default=defaults.summary_tokens)
    parser.add_argument(
        "--input-tokens", type=int, default=INPUT_TOKENS,
        help="prompt tokens of the page read for a summary (the daemon's: %(default)s; 0: the whole page, in parts)",
    )  # fmt: skip
    parser.add_argument("--style", choices=("summary", "eli5"), default="summary")
    parser.add_argument("--json", type=Path, help="write every page's figures here too")
    args = parser.parse_args()
    truth_file = args.data_dir / "ground-truth.json"
    if not truth_file.is_file():
        raise SystemExit(f"no benchmark pages in {args.data_dir} (ground-truth.json, html/*.html.gz)")
    keys = sorted(json.loads(truth_file.read_text()))
    chosen = random.Random(args.seed).sample(keys, min(args.pages, len(keys)))

    backend = load_backend(args.model, args.n_ctx, args.threads)
    timed = TimedBackend(backend)
    worker = GenerationWorker(timed)
    fetcher = build_fetcher(
        timeout=30,
        max_bytes=20_000_000,
        max_redirects=0,
        user_agent="bench",
        allowed_networks=["127.0.0.0/8"],
    )
    service = PageService(
        PageReader(fetcher, max_words=defaults.max_words),
        worker.generate_text,
        lambda: meter_for(backend, args.n_ctx),
        Lengths(args.map_tokens, args.summary_tokens, args.input_tokens),
    )
    print(
        f"model {args.model} (n_ctx {args.n_ctx}, {args.threads} threads), {len(chosen)} pages (seed {args.seed}), map_tokens "
        f"{args.map_tokens}, summary_tokens {args.summary_tokens}, input_tokens {args.input_tokens or 'whole'}\n"
    )
    rows: list[dict[str, Any]] = []
    refused: dict[str, int] = {}
    with serve() as server:
        urls = route_pages(server, args.data_dir / "html", chosen)
        for key in chosen:
            before = len(timed.calls)
            start = time.perf_counter()
            try:
                found = service.summarize(urls[key], args.style)
            except PageError as exc:
                refused[exc.code or "?"] = refused.get(exc.code or "?", 0) + 1
                print(f"{key[:10]}  refused: {exc.code}")
                continue
            seconds = time.perf_counter() - start
            calls = timed.calls[before:]
            row = {
                "page": key, "words": found.words, "parts": found.parts, "levels": found.levels,
                "calls": len(calls), "prompt_tokens": sum(c["prompt_tokens"] for c in calls),
                "answer_tokens": sum(c["answer_tokens"] for c in calls), "seconds": seconds,
                "model_seconds": sum(c["seconds"] for c in calls), "path": found.path,
                "unsupported": list(found.unsupported), "summary": found.text, "title": found.title,
                "call_detail": calls,
            }  # fmt: skip
            rows.append(row)
            print(
                f"{key[:10]} {found.words:6,} words {found.parts:2} parts {len(calls)} calls "
                f"{row['prompt_tokens']:6.0f} prompt {row['answer_tokens']:4.0f} answer tokens {seconds:6.1f} s "
                f"{found.path:<10} {', '.join(found.unsupported[:8])}"
            )
            print(f"    {found.text[:300]}")
    worker.close()
    service.close()
    backend.close()
    if not rows:
        raise SystemExit("no page was summarized")

    n = len(rows)
    share = {p: sum(r["path"] == p for r in rows) / n for p in ("model", "retry", "extractive")}
    times = [r["seconds"] for r in rows]
    calls = [c for r in rows for c in r["call_detail"]]
    print(f"\n{n} summaries ({sum(refused.values())} pages refused: {refused or 'none'})")
    print(
        f"kept to the page: first try {share['model']:.0%}, after the retry {share['model'] + share['retry']:.0%} "
        f"(retry {share['retry']:.0%}), extractive fallback {share['extractive']:.0%}"
    )
    print(
        f"seconds per summary: median {statistics.median(times):.1f}, p90 {percentile(times, 0.9):.1f}, "
        f"max {max(times):.1f}; model calls per summary {len(calls) / n:.2f}"
    )
    print(
        f"per call: prompt tokens median {statistics.median(c['prompt_tokens'] for c in calls):.0f} "
        f"(max {max(c['prompt_tokens'] for c in calls):.0f}), answer tokens median "
        f"{statistics.median(c['answer_tokens'] for c in calls):.0f}; share of the time in model calls "
        f"{sum(r['model_seconds'] for r in rows) / sum(times):.0%}"
    )
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"data_dir": str(args.data_dir), "json": None},
                                         "rows": rows, "refused": refused}, indent=1, default=str))  # fmt: skip


if __name__ == "__main__":
    main()
