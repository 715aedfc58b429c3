"""`assistant bench`: daemon HTTP streaming vs. llama-cpp-python direct, in one run."""

from __future__ import annotations

import argparse

from assistant.config import load_settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="measure tokens/s through the daemon's HTTP stream vs. llama-cpp-python direct"
    )
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from benchmarks.bench_chat import main_bench

    return main_bench(load_settings(args.config), args.rounds, args.max_tokens, args.json)
