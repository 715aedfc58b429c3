"""`assistant memory add|search|list|forget|import|feedback`: talk to the running daemon's /api/memories
(and /api/feedback: what memory learned from thumbs up and down on answers)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.core.errors import AssistantError, BadRequest

if TYPE_CHECKING:
    from assistant.client.daemon import DaemonClient

IMPORT_SUFFIXES = (".md", ".markdown", ".txt", ".text", ".rst")
BATCH = 64


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("memory", help="add, search, list, forget or import memories (daemon must run)")
    msub = p.add_subparsers(dest="memory_command", metavar="ACTION", required=True)

    a = msub.add_parser("add", help="add a note ('-' reads standard input)")
    a.add_argument("text", nargs="+")
    a.add_argument("--source", default="note", help="note (default), user, skill:<name>, feed:<url>")
    a.set_defaults(func=cmd_add)

    s = msub.add_parser("search", help="hybrid search")
    s.add_argument("query", nargs="+")
    s.add_argument("-k", type=int, default=5)
    s.add_argument("--mode", choices=["hybrid", "dense", "keyword"], default="hybrid")
    s.add_argument("--source", action="append", help="only this source (repeatable; 'feed:' for a prefix)")
    s.add_argument("--conversation", help="only this conversation id")
    s.add_argument("--since", help="ISO date-time with zone, e.g. 2026-01-01T00:00:00Z")
    s.add_argument("--until")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_search)

    ls = msub.add_parser("list", help="newest memories first")
    ls.add_argument("--limit", type=int, default=20)
    ls.add_argument("--offset", type=int, default=0)
    ls.set_defaults(func=cmd_list)

    f = msub.add_parser("forget", help="delete memories by id")
    f.add_argument("ids", nargs="+")
    f.set_defaults(func=cmd_forget)

    i = msub.add_parser("import", help="import a folder of text/Markdown files as notes (chunked)")
    i.add_argument("directory", type=Path)
    i.add_argument("--max-chars", type=int, default=1500, help="longest chunk (default 1500 characters)")
    i.set_defaults(func=cmd_import)

    fb = msub.add_parser("feedback", help="what memory learned from rated answers; --undo ID takes one back")
    fb.add_argument("--undo", type=int, metavar="ID", action="append", help="undo this rating (repeatable)")
    fb.add_argument("--limit", type=int, default=20)
    fb.set_defaults(func=cmd_feedback)


def _daemon(args: argparse.Namespace) -> DaemonClient:
    from assistant.client.daemon import DaemonClient
    from assistant.config import load_settings

    return DaemonClient.from_settings(load_settings(args.config), timeout=120.0)


def cmd_add(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.text == ["-"] else " ".join(args.text)
    with _daemon(args) as daemon:
        got = daemon.call("POST", "/api/memories", json={"text": text, "source": args.source})
    print(got["id"])
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    params: list[tuple[str, Any]] = [("q", " ".join(args.query)), ("k", args.k), ("mode", args.mode)]
    params += [("source", s) for s in args.source or []]
    for key, value in (("conversation_id", args.conversation), ("since", args.since), ("until", args.until)):
        if value:
            params.append((key, value))
    with _daemon(args) as daemon:
        got = daemon.call("GET", "/api/memories/search", params=params)
    if args.json:
        import json

        print(json.dumps(got, indent=2))
        return 0
    from rich.console import Console

    console = Console()
    console.print(search_table(got["data"], console.width))
    return 0


WIDE = 110  # columns from which the date and the retrievers get columns of their own


def search_table(hits: list[dict[str, Any]], width: int) -> Any:
    """Search hits as a rich Table that fits ``width`` columns: the id (needed by ``forget``) and score never
    wrap, the source is cut with an ellipsis, the text takes what is left and wraps at words. At under
    ``WIDE`` columns the date and the retrievers are left out (no one-word-per-line text at 80)."""
    from rich import box
    from rich.table import Table

    wide = width >= WIDE
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=True)
    table.add_column("id", no_wrap=True, min_width=24)
    table.add_column("score", no_wrap=True, justify="right")
    if wide:
        table.add_column("date", no_wrap=True)
    table.add_column("source", no_wrap=True, overflow="ellipsis", max_width=14 if wide else 10)
    if wide:
        table.add_column("found by", no_wrap=True, overflow="ellipsis", max_width=14)
    table.add_column("text", ratio=1, overflow="fold")
    for h in hits:
        text = " ".join(str(h["text"]).split())
        text = text if len(text) <= 300 else text[:299] + "…"
        row = [h["id"], f"{h['score']:.2f}"]
        if wide:
            row.append(h["created_at"][:10])
        row.append(h["source"])
        if wide:
            row.append("+".join(h["retrievers"]))
        table.add_row(*row, text)
    return table


def cmd_list(args: argparse.Namespace) -> int:
    with _daemon(args) as daemon:
        got = daemon.call("GET", "/api/memories", params={"limit": args.limit, "offset": args.offset})
    for m in got["data"]:
        print(f"{m['id']}  {m['created_at'][:16]}  {m['source']:<10} {m['text'][:100]!r}")
    print(f"({len(got['data'])} of {got['total']})")
    return 0


def _delete_each(daemon: DaemonClient, collection: str, ids: list[str], done: str) -> int:
    """DELETE ``collection/<id>`` for each id, one line per id (``done`` names what was done); 1 if any failed."""
    failed = 0
    for item in ids:
        try:
            daemon.call("DELETE", f"{collection}/{item}")
            print(f"{done} {item}")
        except AssistantError as exc:
            print(f"{item}: {exc.message}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def cmd_forget(args: argparse.Namespace) -> int:
    with _daemon(args) as daemon:
        return _delete_each(daemon, "/api/memories", args.ids, "forgot")


def cmd_feedback(args: argparse.Namespace) -> int:
    with _daemon(args) as daemon:
        if args.undo:
            return _delete_each(daemon, "/api/feedback", [str(r) for r in args.undo], "undid rating")
        got = daemon.call("GET", "/api/feedback", params={"limit": args.limit})
    for r in got["data"]:
        print(f"#{r['id']}  {r['created_at'][:16]}  {r['rating']:<4}  asked: {r['question'][:80]!r}")
        if not r["memories"]:
            print("      (no memories were recalled into that answer)")
        for m in r["memories"]:
            text = m["text"][:90] if m["text"] is not None else "(deleted since)"
            print(f"      {m['effect']:<9} {m['id']}  {text!r}")
    print(
        f"({len(got['data'])} of {got['total']} ratings; undo one with: assistant memory feedback --undo ID)"
    )
    return 0


def files_to_import(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise BadRequest(f"{directory} is not a directory")
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in IMPORT_SUFFIXES)


def import_items(directory: Path, max_chars: int) -> Iterator[dict[str, Any]]:
    from memory.chunking import chunk_document

    for path in files_to_import(directory):
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            print(f"skipped {path}: not UTF-8 text", file=sys.stderr)
            continue
        rel = str(path.relative_to(directory))
        for n, chunk in enumerate(chunk_document(text, max_chars)):
            yield {"text": chunk, "source": "note", "metadata": {"file": rel, "chunk": n}}


def cmd_import(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    items = list(import_items(args.directory, args.max_chars))
    if not items:
        print(f"nothing to import in {args.directory} (looked for {', '.join(IMPORT_SUFFIXES)})")
        return 0
    files = len({i["metadata"]["file"] for i in items})
    columns = TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()
    with _daemon(args) as daemon, Progress(*columns) as progress:
        task = progress.add_task("import", total=len(items))
        for start in range(0, len(items), BATCH):
            batch = items[start : start + BATCH]
            daemon.call("POST", "/api/memories/batch", json={"memories": batch})
            progress.advance(task, len(batch))
    print(f"imported {len(items)} notes from {files} files")
    return 0
