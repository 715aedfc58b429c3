"""The request guard: the checks every request passes before any route or body parser sees it.

In order, each answered in the OpenAI error shape:
1. ``Host`` must be on the allow-list (loopback names, the bind address, ``server.allowed_hosts``): a page
   on another site that re-binds its DNS name to 127.0.0.1 gets 421, not the daemon.
2. A declared ``Content-Length`` above ``server.max_body_bytes`` gets 413 before anything is read.
3. With ``server.api_token`` set, every path but the health check and the web page needs the token
   (``?token=`` only for the notification event stream, which browsers cannot give headers): 401.
4. A state-changing request (POST, PUT, PATCH, DELETE) from a browser on another origin (``Origin`` not
   this daemon, ``Origin: null``, or ``Sec-Fetch-Site: cross-site``) gets 403; one with a body must say
   ``Content-Type: application/json`` (415), so no form or ``text/plain`` POST slips past CORS preflight.
5. The body is read here, counting bytes as they arrive; past the limit the request ends with 413 and
   memory never holds more than the limit. The route then reads the buffered body.

A WebSocket handshake passes checks 1, 3 (``?token=`` allowed) and the Origin check of 4; a refused one is
closed before it is accepted.

Before all that, each request gets its id: the client's ``X-Request-ID`` when it is a sane one, else a new
one. It is set for the request's log lines (``assistant.core.logs.request_id``), returned in the
``X-Request-ID`` response header (refusals too), and ends the request's one access log line (method, path
without its query, status, milliseconds).
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Iterable
from urllib.parse import parse_qs, urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.api.error_shape import error_body
from assistant.config import ServerSettings, is_wildcard_host
from assistant.core.logs import accept_request_id, request_id

log = logging.getLogger("assistant.access")

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "localhost.localdomain")
PUBLIC_PATHS = ("/healthz", "/")
PUBLIC_PREFIXES = ("/static/",)
QUERY_TOKEN_PATHS = ("/api/notifications/stream",)
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
QUIET_PATHS = ("/healthz", "/metrics")  # polled: their access lines are DEBUG


def host_name(value: str) -> str:
    """``"127.0.0.1:8765"`` -> ``"127.0.0.1"``; ``"[::1]:8765"`` -> ``"::1"``; lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


def allowed_host_names(server: ServerSettings) -> frozenset[str] | None:
    """The Host names this daemon answers to, or None for any (a token-protected wildcard bind with no
    list: the token, not the name, keeps other sites out)."""
    names = {host_name(h) for h in server.allowed_hosts}
    if "*" in names:
        return None
    bind = server.host.strip()
    if is_wildcard_host(bind):
        if server.api_token and not names:
            return None
    else:
        names.add(host_name(bind))
    names.update(LOOPBACK_NAMES)
    return frozenset(names)


def token_matches(expected: str, header: str | None) -> bool:
    if not header:
        return False
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


def _json_error(status: int, message: str, type_: str, code: str) -> tuple[int, bytes]:
    return status, json.dumps(error_body(message, type_, code)).encode()


class RequestGuard:
    """ASGI middleware doing the checks listed in the module docstring."""

    def __init__(self, app: ASGIApp, server: ServerSettings) -> None:
        self.app = app
        self.hosts = allowed_host_names(server)
        self.token = server.api_token or None
        self.max_body = server.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        rid = accept_request_id(headers.get("x-request-id"))
        context = request_id.set(rid)
        started, status = time.perf_counter(), 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", rid.encode())]}
            await send(message)

        try:
            await self._guarded(scope, headers, receive, send_with_id)
        finally:
            path: str = scope["path"]
            level = logging.DEBUG if path in QUIET_PATHS else logging.INFO
            ms = (time.perf_counter() - started) * 1000
            # The path only (a query may hold ?token=), with control characters escaped.
            shown = json.dumps(path[:300], ensure_ascii=False)[1:-1]
            log.log(level, "%s %s %s %.1f ms", scope["method"], shown, status or "-", ms)
            request_id.reset(context)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket handshake passes the same Host, token and Origin checks (the token may come as
        ``?token=``: browsers cannot give a WebSocket headers); a refused one is closed before it is
        accepted (the client sees 403)."""
        headers = Headers(scope=scope)
        why = None
        if self.hosts is not None and host_name(headers.get("host", "")) not in self.hosts:
            why = "host not allowed"
        elif self.token and not self._authorized(scope, headers, None):
            why = "missing or wrong API token"
        elif _cross_site(headers):
            why = "from another web site"
        if why is None:
            await self.app(scope, receive, send)
            return
        log.info("WebSocket %s refused: %s", json.dumps(scope["path"][:300])[1:-1], why)
        await send({"type": "websocket.close", "code": 1008})

    async def _guarded(self, scope: Scope, headers: Headers, receive: Receive, send: Send) -> None:
        refused = self._refusal(scope, headers)
        if refused is not None:
            await _respond(send, *refused)
            return
        if scope["method"] not in STATE_CHANGING and "content-length" not in headers:
            if "transfer-encoding" not in headers:
                await self.app(scope, receive, send)
                return
        body = await self._read_body(receive)
        if body is None:
            await _respond(send, *_too_large(self.max_body))
            return
        await self.app(scope, _replay(body, receive), send)

    def _refusal(self, scope: Scope, headers: Headers) -> tuple[int, bytes] | None:
        host = host_name(headers.get("host", ""))
        if self.hosts is not None and host not in self.hosts:
            return _json_error(
                421, f"this daemon does not answer to the host name {host!r} (server.allowed_hosts)",
                "invalid_request_error", "host_not_allowed",
            )  # fmt: skip
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return _json_error(400, "Content-Length must be a number", "invalid_request_error", "bad_length")
            if int(length) > self.max_body:
                return _too_large(self.max_body)
        path: str = scope["path"]
        if self.token and not _is_public(path) and not self._authorized(scope, headers, path):
            return _json_error(
                401, "missing or wrong API token: send 'Authorization: Bearer <token>'",
                "authentication_error", "invalid_api_key",
            )  # fmt: skip
        if scope["method"] in STATE_CHANGING:
            if _cross_site(headers):
                return _json_error(
                    403, "requests from another web site may not change this daemon's state",
                    "permission_error", "cross_origin",
                )  # fmt: skip
            has_body = (length is not None and length != "0") or "transfer-encoding" in headers
            if has_body and not _is_json(headers.get("content-type", "")):
                return _json_error(
                    415, "send the body as JSON with 'Content-Type: application/json'",
                    "invalid_request_error", "unsupported_media_type",
                )  # fmt: skip
        return None

    def _authorized(self, scope: Scope, headers: Headers, path: str | None) -> bool:
        """The token in the Authorization header, or as ``?token=`` for the paths that allow it (``path``
        None: a WebSocket, whichever its path)."""
        assert self.token is not None
        header = headers.get("authorization")
        query_ok = path is None or (scope["method"] == "GET" and path in QUERY_TOKEN_PATHS)
        if header is None and query_ok:
            given = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
            header = f"Bearer {given[0]}" if given else None
        return token_matches(self.token, header)

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it passes the limit (what came so far is dropped)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _cross_site(headers: Headers) -> bool:
    """True for a browser request made by a page of another origin."""
    if headers.get("sec-fetch-site", "").lower() == "cross-site":
        return True
    origin = headers.get("origin")
    if origin is None:
        return False
    parts = urlsplit(origin)
    if origin == "null" or parts.scheme not in ("http", "https") or not parts.netloc:
        return True
    return parts.netloc.lower() != headers.get("host", "").strip().lower()


def _too_large(limit: int) -> tuple[int, bytes]:
    return _json_error(
        413, f"the request body is larger than {limit} bytes (server.max_body_bytes)",
        "invalid_request_error", "too_large",
    )  # fmt: skip


def _replay(body: bytes, receive: Receive) -> Receive:
    """The buffered body first, then the client's own messages (a streaming answer waits for its
    disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _respond(send: Send, status: int, body: bytes, extra: Iterable[tuple[bytes, bytes]] = ()) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

