"""`assistant feeds list|add URL|remove ID|refresh [ID]|entries [ID]`: talks to the running daemon."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from assistant.config import load_settings

if TYPE_CHECKING:
    from assistant.client.daemon import DaemonClient


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("feeds", help="subscribe to and read news feeds (via the running daemon)")
    parser.add_argument("--json", action="store_true", help="print the daemon's JSON answer")
    actions = parser.add_subparsers(dest="feeds_command", metavar="ACTION", required=True)
    actions.add_parser("list", help="subscribed feeds with their last fetch and error")
    add = actions.add_parser("add", help="subscribe to a feed URL (fetched at once)")
    add.add_argument("url")
    add.add_argument("--title", help="name to show instead of the feed's own title")
    add.add_argument("--no-fetch", action="store_true", help="subscribe without fetching now")
    remove = actions.add_parser("remove", help="unsubscribe (its stored entries are deleted)")
    remove.add_argument("id", type=int)
    refresh = actions.add_parser("refresh", help="fetch every feed now (or one, by id)")
    refresh.add_argument("id", type=int, nargs="?")
    entries = actions.add_parser("entries", help="newest entries across feeds (or of one feed, by id)")
    entries.add_argument("id", type=int, nargs="?")
    entries.add_argument("-n", "--limit", type=int, default=20)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from assistant.client.daemon import DaemonClient

    settings = load_settings(args.config)
    # A refresh fetches every feed; leave room for several slow ones.
    with DaemonClient.from_settings(settings, timeout=settings.feeds.timeout * 6 + 10) as daemon:
        data, printer = _ask_daemon(daemon, args)
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        printer(data)
    return 0


def _ask_daemon(daemon: DaemonClient, args: argparse.Namespace) -> tuple[Any, Callable[[Any], None]]:
    """The daemon's answer to the action, and how to print it."""
    action = args.feeds_command
    printer: Callable[[Any], None]
    if action == "list":
        data = daemon.call("GET", "/api/feeds")
        printer = _print_feeds
    elif action == "add":
        body = {"url": args.url, "title": args.title, "refresh": not args.no_fetch}
        data = daemon.call("POST", "/api/feeds", json=body)
        printer = _print_added
    elif action == "remove":
        data = daemon.call("DELETE", f"/api/feeds/{args.id}")
        printer = _print_removed
    elif action == "refresh":
        if args.id is None:
            data = daemon.call("POST", "/api/feeds/refresh")
        else:
            data = {"data": [daemon.call("POST", f"/api/feeds/{args.id}/refresh")]}
        printer = _print_results
    else:  # entries
        path = "/api/feeds/entries" if args.id is None else f"/api/feeds/{args.id}/entries"
        data = daemon.call("GET", path, params={"limit": args.limit})
        printer = _print_entries
    return data, printer


def _print_removed(data: dict[str, Any]) -> None:
    print(f"removed feed {data['id']}")


def _print_feeds(data: dict[str, Any]) -> None:
    feeds = data["data"]
    if not feeds:
        print("no feeds; add one with `assistant feeds add URL`")
    for f in feeds:
        fetched = f["last_fetched"][:16].replace("T", " ") if f["last_fetched"] else "never fetched"
        print(f"{f['id']:>4}  {f['title']}\n      {f['url']}\n      {f['entry_count']} entries, {fetched}")
        if f["last_error"]:
            print(f"      problem: {f['last_error']}")


def _print_added(data: dict[str, Any]) -> None:
    feed = data["feed"]
    print(f"subscribed {feed['id']}: {feed['title']} <{feed['url']}>")
    if data.get("fetch"):
        _print_results({"data": [data["fetch"]]})


def _print_results(data: dict[str, Any]) -> None:
    for r in data["data"]:
        if r["not_modified"]:
            state = "not modified"
        elif r["ok"]:
            state = f"{r['new_entries']} new of {r['entries_seen']}"
        else:
            state = "FAILED"
        print(f"{r['feed_id']:>4}  {state}  {r['url']}")
        if r["error"]:
            print(f"      problem: {r['error']}")


def _print_entries(data: dict[str, Any]) -> None:
    entries = data["data"]
    if not entries:
        print("no entries")
    for e in entries:
        when = e["published"][:16].replace("T", " ") if e["published"] else "undated"
        print(f"{when}  [{e['feed_title']}] {e['title'] or '(untitled)'}")
        if e["link"]:
            print(f"                  {e['link']}")
