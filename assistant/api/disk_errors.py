"""A write the disk refused (full, read-only) answers 507/503 with what to do, not a bare 500.

Errors of the stores reach the routes as whatever their library raises (sqlite3, SQLAlchemy, Chroma,
OSError); ``assistant.core.storage_errors.storage_error`` recognises the disk's refusal among them. This
ASGI middleware sits just outside the routes' own error handling and turns those into the error response
of their AssistantError; anything else, or an error after the answer has started streaming, goes on as
before.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.api.error_shape import error_response
from assistant.core.storage_errors import storage_error

log = logging.getLogger(__name__)


class DiskErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            error = storage_error(exc)
            if error is None or started:
                raise
            log.error("%s %s: %s", scope.get("method"), scope.get("path"), error.message)
            await error_response(error)(scope, receive, send)
