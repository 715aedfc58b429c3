"""`assistant serve`: run the daemon.

A stop (SIGTERM from systemd, or Ctrl-C) is graceful and bounded by ``server.stop_timeout``: the listening
socket closes; every answer being streamed is cut at its next token and ends with a ``stopping`` error
(503) and ``[DONE]``; new generations are refused; open responses get the timeout to finish; then
``Services.close`` lets running scheduled jobs finish (the same bound) before the model, notifier and
memory close, and the SQLite stores are closed. The exit code is 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import time
from typing import TYPE_CHECKING, Any, Literal

from assistant.cli.http_limits import HEADER_TIMEOUT, MAX_HEADER_BYTES, limited_http_protocol
from assistant.config import ServerSettings, is_loopback_host, load_settings
from assistant.core.errors import ConfigError
from assistant.core.logs import configure_logging
from assistant.core.procmem import tune_malloc
from assistant.core.sqlite_db import keep_private
from assistant.core.storage_errors import startup_problem
from assistant.core.text import learn_model_control_tokens

if TYPE_CHECKING:
    from assistant.services import Services

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
    server_cfg = settings.server
    configure_logging(
        "DEBUG" if getattr(args, "verbose", False) else server_cfg.log_level, server_cfg.log_format
    )
    check_listen_policy(server_cfg.host, server_cfg.api_token)
    tune_malloc()  # before the threads: memory freed after a busy hour goes back to the system
    keep_private(settings.data_dir)  # every file and folder the daemon makes is its user's only

    from assistant.app import create_app
    from assistant.services import build_services

    try:
        services = build_services(settings)
    except Exception as exc:
        problem = startup_problem(exc)  # a damaged, full or read-only store: say what to do, exit distinctly
        if problem is None:
            raise
        log.error("cannot start: %s", problem.message)
        return problem.exit_code
    learned = learn_model_control_tokens(services.llm)  # its own special tokens never pass as text
    log.debug("learned %d control token(s) from the model's vocabulary and chat template", learned)
    app = create_app(services)
    config = uvicorn_config(app, server_cfg)
    server = graceful_server(config, services)
    log.info("listening on http://%s:%d (model %s)", server_cfg.host, server_cfg.port, services.llm.name)
    # uvicorn re-raises the stop signal once it has shut down; handled, it ends here with exit code 0.
    signal.signal(signal.SIGTERM, _stopped)
    server.run()
    log.info("stopped")
    return 0


def uvicorn_config(
    app: Any,
    server_cfg: ServerSettings,
    *,
    header_timeout: float = HEADER_TIMEOUT,
    local_uids: frozenset[int] | None | Literal["owner"] = "owner",
) -> Any:
    """The daemon's uvicorn configuration: its protocol bounds a request's headers in size and in time
    (``assistant.cli.http_limits``), and, without ``server.api_token``, answers only connections from this
    user's (or root's) processes and from other machines (``local_uids``: "owner" for those, None for
    anyone; docs/security.md); uvicorn's own access log is off (the request guard writes one without
    the query string)."""
    import uvicorn

    if local_uids == "owner":
        local_uids = local_owners(server_cfg)

    return uvicorn.Config(
        app, host=server_cfg.host, port=server_cfg.port, log_config=None, access_log=False,
        timeout_graceful_shutdown=max(1, round(server_cfg.stop_timeout)),
        http=limited_http_protocol(MAX_HEADER_BYTES, header_timeout, local_uids),
    )  # fmt: skip


def local_owners(server_cfg: ServerSettings) -> frozenset[int] | None:
    """The uids whose local connections the daemon answers: this process's and root's, unless an API token is set
    (then the token decides, for local users as for other machines) or the system cannot tell who
    connects (not Linux)."""
    from assistant.cli.local_peers import can_tell_local_users

    if server_cfg.api_token or not can_tell_local_users() or not hasattr(os, "getuid"):
        return None
    return frozenset({os.getuid(), 0})


def _stopped(signum: int, frame: Any) -> None:
    """The stop signal, re-raised by uvicorn after a graceful shutdown: nothing is left to do."""


def graceful_server(config: Any, services: Services) -> Any:
    """A uvicorn Server whose shutdown first ends the streams (see the module docstring)."""
    import uvicorn
    from sse_starlette.sse import AppStatus

    # sse-starlette would cancel every event stream the moment the signal comes, before a chat stream can
    # send its "stopping" error: the streams are ended here instead, each by its own source.
    AppStatus.disable_automatic_graceful_drain()

    class GracefulServer(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            started = time.monotonic()
            cut = services.worker.stop_streams()  # each ends at its next token, with the "stopping" error
            if services.notifier is not None:
                services.notifier.broadcaster.close()  # the notification streams end
            log.info("stopping: %d streamed answer(s) cut short, new generations refused", cut)
            await super().shutdown(sockets=sockets)  # open responses get server.stop_timeout to finish
            log.info("HTTP server stopped in %.1f s", time.monotonic() - started)

    return GracefulServer(config)


def check_listen_policy(host: str, api_token: str | None) -> None:
    """Refuse to listen beyond loopback without an API token."""
    if not is_loopback_host(host) and not api_token:
        raise ConfigError(
            f"refusing to listen on {host} without an API token: set server.api_token "
            "(or ASSISTANT_SERVER__API_TOKEN), or listen on 127.0.0.1"
        )
