"""`assistant schedule list|add SKILL "every weekday at 7:30" [--tz ZONE] [--arg k=v]|pause ID|resume ID|
remove ID|run ID|runs ID`: talks to the running daemon."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from assistant.cli.skills import add_arg_options, daemon_for, parse_kv
from assistant.skillkit.schedules import RunRecord, Schedule

if TYPE_CHECKING:
    from assistant.client.daemon import DaemonClient


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("schedule", help="run skills on schedules (via the running daemon)")
    parser.add_argument("--json", action="store_true", help="print the daemon's JSON answer")
    actions = parser.add_subparsers(dest="schedule_command", metavar="ACTION", required=True)
    actions.add_parser("list", help="schedules with their cron, zone and next run")
    add = actions.add_parser("add", help='add one: SKILL "every weekday at 7:30" (or a cron expression)')
    add.add_argument("skill")
    add.add_argument("when", help='"every day at 8", "every 15 minutes", "hourly", "30 7 * * 1-5", ...')
    add_arg_options(add)
    for name, text in [
        ("pause", "stop running it until resumed"),
        ("resume", "run it again"),
        ("remove", "delete it"),
        ("run", "run it now (delivered as a notification)"),
        ("runs", "its recent runs"),
    ]:
        actions.add_parser(name, help=text).add_argument("id")
    parser.set_defaults(func=run)


def describe(s: Schedule) -> str:
    when = f"{s.schedule!r} = {s.description} ({s.timezone})"
    state = "paused" if s.paused else f"next {s.next_run_time}"
    last = s.last_run
    tail = f", last {last.status} {last.started_at}" if last else ""
    args = " " + " ".join(f"{k}={v}" for k, v in s.args.items()) if s.args else ""
    return f"{s.id}  {s.skill}{args}  {when}  {state}{tail}"


def describe_run(r: RunRecord) -> str:
    return f"{r.started_at}  {r.status:<7} {r.trigger:<8} {r.title or r.error or ''}"


def run(args: argparse.Namespace) -> int:
    with daemon_for(args.config) as daemon:
        data, lines = _ask_daemon(daemon, args)
    print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else "\n".join(lines))
    return 0


def _ask_daemon(daemon: DaemonClient, args: argparse.Namespace) -> tuple[Any, list[str]]:
    """The daemon's answer to the action, and its lines for a person."""
    action = args.schedule_command
    if action == "list":
        data = daemon.call("GET", "/api/schedules")
        lines = [describe(Schedule.from_json(s)) for s in data["data"]] or [
            "no schedules (add one: assistant schedule add time 'every day at 8')"
        ]
    elif action == "add":
        body = {"skill": args.skill, "schedule": args.when, "args": parse_kv(args.arg), "timezone": args.tz}
        data = daemon.call("POST", "/api/schedules", json=body)
        lines = [f"added {describe(Schedule.from_json(data))}"]
    elif action in ("pause", "resume"):
        data = daemon.call("POST", f"/api/schedules/{args.id}/{action}")
        lines = [describe(Schedule.from_json(data))]
    elif action == "remove":
        data = daemon.call("DELETE", f"/api/schedules/{args.id}")
        lines = [f"removed {data['id']}"]
    elif action == "run":
        data = daemon.call("POST", f"/api/schedules/{args.id}/run")
        lines = [data["result"]["text"]]
    else:  # runs
        data = daemon.call("GET", f"/api/schedules/{args.id}/runs")
        lines = [describe_run(RunRecord.from_json(r)) for r in data["data"]] or ["no runs yet"]
    return data, lines
