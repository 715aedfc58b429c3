"""`assistant serve`: run the daemon."""

from __future__ import annotations

import argparse
import logging

from assistant.config import is_loopback_host, load_settings
from assistant.core.errors import ConfigError

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the daemon (default 127.0.0.1:8765)")
    p.add_argument("--host", help="address to listen on (beyond loopback needs server.api_token)")
    p.add_argument("--port", type=int, help="port to listen on")
    p.add_argument("--model", help="path to a GGUF model file (model.path)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    overrides: dict = {}
    if args.host:
        overrides.setdefault("server", {})["host"] = args.host
    if args.port:
        overrides.setdefault("server", {})["port"] = args.port
    if args.model:
        overrides.setdefault("model", {})["path"] = args.model
    settings = load_settings(args.config, **overrides)
    check_listen_policy(settings.server.host, settings.server.api_token)

    import uvicorn

    from assistant.app import create_app
    from assistant.services import build_services

    services = build_services(settings)
    app = create_app(services)
    log.info(
        "listening on http://%s:%d (model %s)", settings.server.host, settings.server.port, services.llm.name
    )
    uvicorn.run(
        app, host=settings.server.host, port=settings.server.port, log_level="warning", access_log=False
    )
    return 0


def check_listen_policy(host: str, api_token: str | None) -> None:
    """Refuse to listen beyond loopback without an API token."""
    if not is_loopback_host(host) and not api_token:
        raise ConfigError(
            f"refusing to listen on {host} without an API token: set server.api_token "
            "(or ASSISTANT_SERVER__API_TOKEN), or listen on 127.0.0.1"
        )
