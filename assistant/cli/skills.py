"""`assistant skills list|run NAME [--arg k=v] [--tz ZONE]`: talks to the running daemon."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from assistant.config import load_settings
from assistant.core.errors import AssistantError

if TYPE_CHECKING:
    from assistant.client.daemon import DaemonClient
    from assistant.skillkit.spec import SkillInfo


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("skills", help="list skills or run one now (via the running daemon)")
    parser.add_argument("--json", action="store_true", help="print the daemon's JSON answer")
    actions = parser.add_subparsers(dest="skills_command", metavar="ACTION", required=True)
    actions.add_parser("list", help="the skills the daemon knows, with their parameters")
    run_p = actions.add_parser("run", help="run a skill now and print its answer")
    run_p.add_argument("name")
    add_arg_options(run_p)
    parser.set_defaults(func=run)


def add_arg_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--arg", action="append", default=[], metavar="KEY=VALUE", help="a skill argument (repeatable)"
    )
    p.add_argument("--tz", help="IANA time zone, e.g. Europe/Berlin (default: the configured one)")


def parse_kv(pairs: list[str]) -> dict[str, str]:
    args: dict[str, str] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise AssistantError(f"--arg {pair!r}: expected KEY=VALUE")
        args[key.strip()] = value
    return args


def daemon_for(config: str | None) -> DaemonClient:
    """A client of the daemon the config names (its URL and token)."""
    from assistant.client.daemon import DaemonClient

    return DaemonClient.from_settings(load_settings(config))


def run(args: argparse.Namespace) -> int:
    if args.skills_command == "list":
        with daemon_for(args.config) as daemon:
            data = daemon.call("GET", "/api/skills")
        if args.json:
            print(json.dumps(data, indent=2, ensure_ascii=False))
            return 0
        skills: list[SkillInfo] = data["data"]
        for s in skills:
            params = " ".join(
                f"{k}={p['default'] if p['default'] is not None else '…'}" for k, p in s["params"].items()
            )
            origin = "" if s["origin"] == "builtin" else f"  [{s['origin']}]"
            print(f"{s['name']:<10} {s['description']}{origin}")
            if params:
                print(f"{'':<10} args: {params}")
        for err in data.get("errors", []):
            print(f"warning: {err}")
        return 0
    body = {"args": parse_kv(args.arg), "timezone": args.tz}
    with daemon_for(args.config) as daemon:
        data = daemon.call("POST", f"/api/skills/{args.name}/run", json=body)
    print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else data["text"])
    return 0
