"""Limits on a request's head (request line and headers) that uvicorn's own protocols do not set.

uvicorn's default protocol (httptools) keeps every header line it is sent, with no size limit, and waits
for the end of the headers for ever: 300 MiB of ``X-Pad:`` lines grew the daemon by 230 MB, and a handful
of connections sending a byte now and then stayed open indefinitely (slowloris). The protocol here is
uvicorn's httptools protocol with two bounds, both counted per request on a connection:

- size: past ``max_header_bytes`` of a request's head the client gets ``431`` and the connection is
  closed; memory never holds more than the limit plus one read (at most 256 KiB);
- time: a connection whose request head is not complete ``header_timeout`` seconds after it opened (or
  after the request's first byte, on a kept-alive connection) is closed. The body is not timed here: the
  request guard counts it, and uvicorn's keep-alive timeout still closes idle connections.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 64 * 1024
HEADER_TIMEOUT = 10.0


def limited_http_protocol(
    max_header_bytes: int = MAX_HEADER_BYTES,
    header_timeout: float = HEADER_TIMEOUT,
    local_uids: frozenset[int] | None = None,
) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with the two bounds of the module docstring (``uvicorn.Config(http=...)``).

    With ``local_uids``, a connection from a process of a local user not in it gets 403 and is closed
    before anything is read (``assistant.cli.local_peers``; docs/security.md)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from assistant.cli.local_peers import peer_uid

    class LimitedHttpToolsProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._head_pending = True  # waiting for a request's head to end
            self._head_bytes = 0
            self._head_timer: asyncio.TimerHandle | None = None
            self._refused = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if local_uids is not None and self.server is not None and self.client is not None:
                uid = peer_uid((self.server[0], int(self.server[1] or 0)), self.client)
                if uid is not None and uid not in local_uids:
                    self._refuse_other_user(uid)
                    return
            self._arm()

        def _refuse_other_user(self, uid: int) -> None:
            log.warning("refused a connection from local user %d: this daemon answers its own user only", uid)
            message = (
                "this daemon belongs to another user of this machine; ask them for server.api_token "
                "(docs/security.md)"
            )
            self._refused = True
            self._send_error(403, b"Forbidden", message, "other_local_user")

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            if self._head_pending:
                self._head_bytes += len(data)
            super().data_received(data)
            if self._head_pending and self._head_bytes > max_header_bytes and not self._refused:
                self._refuse_large()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if not self._head_pending:  # the next request on a kept-alive connection
                self._head_pending, self._head_bytes = True, 0
            self._arm()

        def on_headers_complete(self) -> None:
            self._head_pending = False
            self._disarm()
            super().on_headers_complete()

        def _arm(self) -> None:
            if self._head_timer is None and self._head_pending:
                self._head_timer = self.loop.call_later(header_timeout, self._head_timed_out)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self._head_pending and not self.transport.is_closing():
                log.info("closing a connection whose request headers took longer than %.0f s", header_timeout)
                self._refused = True
                self.transport.close()

        def _send_error(self, status: int, reason: bytes, message: str, code: str) -> None:
            kind = "permission_error" if status == 403 else "invalid_request_error"
            body = json.dumps({"error": {"message": message, "type": kind, "code": code}}).encode()
            head = (
                b"HTTP/1.1 "
                + str(status).encode()
                + b" "
                + reason
                + b"\r\ncontent-type: application/json\r\n"
                b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n"
            )
            self.transport.write(head + body)
            self.transport.close()

        def _refuse_large(self) -> None:
            self._refused = True
            self._disarm()
            log.info("refused a request whose headers passed %d bytes", max_header_bytes)
            message = f"the request headers are larger than {max_header_bytes} bytes"
            self._send_error(431, b"Request Header Fields Too Large", message, "headers_too_large")
            if self.headers is not None:
                self.headers.clear()  # what was parsed so far is dropped now, not when the connection goes
            self.url = b""

    return LimitedHttpToolsProtocol
