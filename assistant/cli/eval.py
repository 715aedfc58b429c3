"""`assistant eval retrieval DIR`: nDCG@10, Recall@5, Recall@10 of dense, BM25 and hybrid memory search.
`assistant eval skills`: the skill case suite on real models (assistant.cli.eval_skills).
`assistant eval everyday` / `notes`: everyday questions and questions about stored notes, checked by code
(assistant.cli.eval_everyday, assistant.cli.eval_notes).
`assistant eval locomo`: LoCoMo questions answered with memory off, recall and gold evidence (assistant.cli.eval_locomo)."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.cli.eval_choice import add_parser as add_choice_parser
from assistant.cli.eval_everyday import add_parser as add_everyday_parser
from assistant.cli.eval_locomo import add_parser as add_locomo_parser
from assistant.cli.eval_notes import add_parser as add_notes_parser
from assistant.cli.eval_skills import add_parser as add_skills_parser
from assistant.core.errors import BadRequest

if TYPE_CHECKING:
    from memory.service import MemoryService


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate parts of the assistant")
    esub = p.add_subparsers(dest="eval_command", metavar="WHAT", required=True)
    r = esub.add_parser("retrieval", help="memory search on a BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")
    r.add_argument("directory", type=Path)
    r.add_argument("--split", default="test", help="qrels/<split>.tsv (default test)")
    r.add_argument("--group-by", metavar="KEY", help="search only documents whose metadata KEY equals the query's")
    r.add_argument("--modes", default="dense,keyword,hybrid", help="comma-separated (default all three)")
    r.add_argument("--index", type=Path, help="keep the memory index here (reused if it exists)")
    r.add_argument("--json", action="store_true", help="print JSON instead of a table")
    r.set_defaults(func=cmd_retrieval)
    add_skills_parser(esub)
    add_everyday_parser(esub)
    add_notes_parser(esub)
    add_choice_parser(esub)
    add_locomo_parser(esub)


def cmd_retrieval(args: argparse.Namespace) -> int:
    from assistant.config import load_settings
    from assistant.core.clock import SystemClock
    from memory.eval import DatasetError, evaluate, format_table, load_beir
    from memory.opening import open_memory, search_config

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if any(m not in ("dense", "keyword", "hybrid") for m in modes):
        raise BadRequest("--modes takes dense, keyword, hybrid")
    try:
        data = load_beir(args.directory, args.split)
    except DatasetError as exc:
        raise BadRequest(str(exc)) from None
    settings = load_settings(args.config)
    with tempfile.TemporaryDirectory(prefix="assistant-eval-") as tmp:
        index = args.index or Path(tmp)
        fresh = not (index / "keyword.sqlite3").exists()
        service = open_memory(index, SystemClock(), config=search_config(settings), max_chars=10_000_000,
                              recency=False)
        try:
            started = time.perf_counter()
            if fresh:
                _ingest_with_progress(service, data.corpus, quiet=args.json)
            ingest_s = time.perf_counter() - started
            started = time.perf_counter()
            try:
                result = evaluate(service, data, args.split, args.group_by, modes)
            except DatasetError as exc:
                raise BadRequest(str(exc)) from None
            search_s = time.perf_counter() - started
        finally:
            service.close()
    if args.json:
        print(json.dumps({**result.as_dict(), "ingest_seconds": round(ingest_s, 1),
                          "search_seconds": round(search_s, 1)}, indent=2))
    else:
        print(format_table(result))
        print(f"(ingest {ingest_s:.0f}s, {len(modes) * result.queries} searches {search_s:.0f}s)")
    return 0


def _ingest_with_progress(service: MemoryService, corpus: Mapping[str, Mapping[str, Any]], *, quiet: bool) -> None:
    from memory.eval import ingest

    if quiet:
        ingest(service, corpus)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("indexing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()) as progress:
        task = progress.add_task("ingest", total=len(corpus))
        ingest(service, corpus, progress=lambda n: progress.advance(task, n))
