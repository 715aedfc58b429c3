"""`assistant remind "in 20 minutes take the pasta out"` and `assistant reminders [list|cancel ID|snooze ID
[MINUTES]|delete ID]`: reminders, timers and alarms through the running daemon (/api/reminders)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from assistant.cli.skills import daemon_for

if TYPE_CHECKING:
    from assistant.client.daemon import DaemonClient


def register(sub: argparse._SubParsersAction) -> None:
    remind = sub.add_parser("remind", help='set a reminder, timer or alarm in words: "in 20 minutes to ..."')
    remind.add_argument("words", nargs="+", help='"remind me tomorrow at 9 to call mum", "timer 10 minutes", ...')
    remind.add_argument("--json", action="store_true", help="print the daemon's JSON answer")
    remind.set_defaults(func=run_remind)
    parser = sub.add_parser("reminders", help="list, cancel or snooze reminders, timers and alarms")
    parser.add_argument("--json", action="store_true", help="print the daemon's JSON answer")
    actions = parser.add_subparsers(dest="reminders_command", metavar="ACTION")
    listing = actions.add_parser("list", help="the pending ones with the time left (the default)")
    listing.add_argument("--all", action="store_true", help="also fired and cancelled ones")
    actions.add_parser("cancel", help="cancel one (it stays listed with --all)").add_argument("id")
    actions.add_parser("delete", help="delete one for good").add_argument("id")
    snooze = actions.add_parser("snooze", help="fire it again in MINUTES (default 10)")
    snooze.add_argument("id")
    snooze.add_argument("minutes", nargs="?", type=float, default=10.0)
    parser.set_defaults(func=run_reminders, all=False)


def _words(text: str) -> str:
    """ "in 20 minutes to take the pasta out" reads as "remind me in 20 minutes ..."; a timer or an alarm
    request is passed as it is."""
    lowered = text.lower().lstrip()
    if lowered.startswith(("remind", "set ", "start ", "wake ", "alarm", "timer", "don't", "dont")) or (
        "timer" in lowered
    ):
        return text
    return f"remind me {text}"


def run_remind(args: argparse.Namespace) -> int:
    with daemon_for(args.config) as daemon:
        data = daemon.call("POST", "/api/reminders", json={"text": _words(" ".join(args.words))})
    print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else f"{data['confirmation']} [{data['id']}]")
    return 0


def run_reminders(args: argparse.Namespace) -> int:
    with daemon_for(args.config) as daemon:
        data, lines = _ask(daemon, args)
    print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else "\n".join(lines))
    return 0


def _ask(daemon: DaemonClient, args: argparse.Namespace) -> tuple[Any, list[str]]:
    action = args.reminders_command or "list"
    if action == "list":
        data = daemon.call("GET", "/api/reminders", params={"all": "true" if args.all else "false"})
        lines = [f"{r['description']}{'' if r['state'] == 'pending' else ' (' + r['state'] + ')'}" for r in data["data"]]
        return data, lines or ['no reminders (set one: assistant remind "in 20 minutes to take the pasta out")']
    if action == "cancel":
        data = daemon.call("POST", f"/api/reminders/{args.id}/cancel")
        return data, [f"cancelled {data['description']}"]
    if action == "delete":
        data = daemon.call("DELETE", f"/api/reminders/{args.id}")
        return data, [f"deleted {data['id']}"]
    data = daemon.call("POST", f"/api/reminders/{args.id}/snooze", json={"minutes": args.minutes})
    return data, [f"snoozed: {data['description']}"]
