"""Request heads are bounded (issue 25): past 64 KiB of headers a client gets 431 and the connection closes
(memory holds at most the limit plus one read); a connection whose headers do not end within the header
timeout is closed (slowloris). Served by the daemon's own uvicorn configuration on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from assistant.cli.http_limits import MAX_HEADER_BYTES
from assistant.cli.serve import uvicorn_config
from assistant.config import ServerSettings
from tests.daemon import free_port

PAD = b"X-Pad: " + b"a" * 1000 + b"\r\n"


async def _echo_length(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = str(size).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


@contextmanager
def _daemon_protocol(header_timeout: float = 10.0, **options: Any) -> Iterator[int]:
    port = free_port()
    config = uvicorn_config(_echo_length, ServerSettings(port=port), header_timeout=header_timeout, **options)
    config.lifespan = "off"
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)  # waiting for a thread to start
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _closed(sock: socket.socket) -> bytes | None:
    """What the server sent before it closed the connection, or None when it is still open after 30 s."""
    sock.settimeout(30)
    got = b""
    try:
        while chunk := sock.recv(65536):
            got += chunk
    except (ConnectionResetError, BrokenPipeError):
        return got
    except TimeoutError:
        return None
    return got


def test_300_mib_of_headers_is_refused_after_the_limit() -> None:
    with _daemon_protocol() as port:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.settimeout(30)
        sent, limit = 0, 300 * 1024 * 1024
        chunk = PAD * 64
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            while sent < limit:
                sock.sendall(chunk)
                sent += len(chunk)
        except (ConnectionResetError, BrokenPipeError):
            pass
        # Refused early: the server stopped reading after the limit; what got through is socket buffers.
        assert sent < 64 * 1024 * 1024, f"the server took {sent} bytes of headers"
        answer = _closed(sock)
        assert answer is not None, "the connection stayed open"
        if answer:  # a reset may swallow the answer while the client was still writing
            assert answer.startswith(b"HTTP/1.1 431"), answer[:100]
        sock.close()


def test_headers_just_past_the_limit_get_431() -> None:
    with _daemon_protocol() as port:
        sock = socket.create_connection(("127.0.0.1", port))
        pads = PAD * (MAX_HEADER_BYTES // len(PAD) + 2)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + pads)
        answer = _closed(sock)
        assert answer is not None and answer.startswith(b"HTTP/1.1 431"), answer
        assert b"headers_too_large" in answer
        sock.close()


def test_partial_headers_are_closed_after_the_header_timeout() -> None:
    with _daemon_protocol(header_timeout=0.5) as port:
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
        for i, sock in enumerate(socks):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * i)
        silent = socket.create_connection(("127.0.0.1", port))  # one that sends nothing at all
        for sock in [*socks, silent]:
            assert _closed(sock) is not None, "a connection with partial headers stayed open"
            sock.close()


def test_ordinary_requests_keep_working() -> None:
    with (
        _daemon_protocol(header_timeout=0.5) as port,
        httpx.Client(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        assert client.get("/a", headers={"X-Some": "b" * 8000}).text == "0"
        big = b"x" * (3 * MAX_HEADER_BYTES)  # a body is not a header
        assert client.post("/b", content=big).text == str(len(big))
        assert client.post("/c", content=big).text == str(len(big))  # the same kept-alive connection


@pytest.mark.parametrize("size", [MAX_HEADER_BYTES - 2048])
def test_headers_under_the_limit_pass(size: int) -> None:
    with _daemon_protocol() as port:
        sock = socket.create_connection(("127.0.0.1", port))
        pads = PAD * (size // len(PAD))
        sock.sendall(b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + pads + b"\r\n")
        answer = _closed(sock)
        assert answer is not None and answer.startswith(b"HTTP/1.1 200"), answer
        sock.close()
