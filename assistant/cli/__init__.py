"""The `assistant` command. Each subcommand lives in its own module with a ``register(subparsers)``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from assistant.core.errors import AssistantError
from assistant.core.logs import QUIET_LIBRARIES, configure_logging

# Modules under assistant.cli that add subcommands. Add a module name here to add its commands.
COMMAND_MODULES = [
    "serve",
    "client",
    "models",
    "feeds",
    "memory",
    "eval",
    "skills",
    "schedule",
    "reminders",
    "voice",
    "doctor",
    "backup",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="assistant", description="A personal LLM assistant daemon.")
    parser.add_argument(
        "--config", help="TOML config file (default: $ASSISTANT_CONFIG or ~/.config/assistant/config.toml)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (over server.log_level)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"assistant.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging("DEBUG" if args.verbose else "INFO")  # `serve` sets server.log_level/log_format
    if args.verbose:  # configure_logging keeps httpx's per-request lines quiet; --verbose shows them
        for name in QUIET_LIBRARIES:
            logging.getLogger(name).setLevel(logging.NOTSET)
    try:
        return int(args.func(args) or 0)
    except AssistantError as exc:
        print(f"assistant: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
