"""The whole-fetch deadline holds before the body too (issue 25): a server on 127.0.0.1 that sends its
status line and headers one byte at a time (each byte well inside the per-read timeout) does not hold a
fetch past ``feeds.timeout``; the fetch ends with a timeout while the server still had bytes to send."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from assistant.feeds.fetch import FeedFetcher, FetchError

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nX-Slow: " + b"a" * 400 + b"\r\n\r\n"
BODY_ONLY_SLOW = b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: 400\r\n\r\n"


@contextmanager
def _trickling_server(head: bytes, gap: float) -> Iterator[tuple[int, dict[str, int]]]:
    """Answers each connection with ``head`` one byte every ``gap`` seconds (then a body the same way);
    ``sent["bytes"]`` counts what went out before the client hung up."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    sent = {"bytes": 0, "total": len(head) + 400}
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)  # the request
                for byte in head + b"x" * 400:
                    if stop.wait(gap):
                        return
                    try:
                        conn.sendall(bytes([byte]))
                    except OSError:
                        break
                    sent["bytes"] += 1

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port, sent
    finally:
        stop.set()
        thread.join(timeout=10)
        listener.close()


@pytest.mark.parametrize(
    ("head", "ends_in_head"), [(HEAD, True), (BODY_ONLY_SLOW, False)], ids=["slow headers", "slow body"]
)
def test_a_trickling_server_does_not_hold_a_fetch_past_the_deadline(head: bytes, ends_in_head: bool) -> None:
    # Each byte comes 0.1 s after the last (far inside the 1 s per-read timeout); the whole answer would
    # take about 50 s or more.
    fetcher = FeedFetcher(timeout=1.0, max_bytes=1_000_000, allowed_networks=["127.0.0.0/8"])
    with _trickling_server(head, gap=0.1) as (port, sent):
        with pytest.raises(FetchError, match="timed out"):
            fetcher.fetch(f"http://127.0.0.1:{port}/feed.xml")
        assert sent["bytes"] < sent["total"], "the fetch waited for the whole trickle"
        if ends_in_head:
            assert sent["bytes"] < len(head), "the fetch waited for the whole trickle of headers"
    fetcher.close()
