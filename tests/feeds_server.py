"""A threaded HTTP server on 127.0.0.1 for feed tests: serves files (with feedparser's `Header:` lines as
response headers) and scripted routes (errors, slow, truncated, oversized, conditional GET)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

_HEADER_RE = re.compile(rb"^\s*Header:\s*([A-Za-z0-9-]+):\s*(.*?)\s*$", re.MULTILINE)


def declared_headers(body: bytes) -> list[tuple[str, str]]:
    """feedparser test files name the HTTP headers to serve them with in "Header: Name: value" lines."""
    head = body[:4096]
    end = head.find(b"-->")
    head = head[: end if end >= 0 else len(head)]
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in _HEADER_RE.findall(head)]


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    # Content-Length to announce (None: the real length); a larger value with a short body = truncation.
    content_length: int | None = None
    hold: threading.Event | None = None  # wait for this before answering (a slow server)


Route = Callable[["Handler"], "Reply | None"]  # None: the route wrote its own response


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once: no 40 ms delayed-ACK stalls
    wbufsize = 1 << 16
    server: FeedServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        path = unquote(urlsplit(self.path).path)
        self.server.requests.append((path, {k.lower(): v for k, v in self.headers.items()}))
        route = self.server.routes.get(path)
        reply = route(self) if route else self.server.file_reply(path)
        if reply is None:
            return
        if reply.hold is not None:
            reply.hold.wait(30)
        self.send_response(reply.status)
        names = {k.lower() for k, _ in reply.headers}
        for key, value in reply.headers:
            self.send_header(key, value)
        if "content-type" not in names and reply.status == 200:
            json_like = path.endswith(".json")
            self.send_header("Content-Type", "application/feed+json" if json_like else "application/xml")
        length = len(reply.body) if reply.content_length is None else reply.content_length
        self.send_header("Content-Length", str(length))
        if reply.content_length is not None:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        try:
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass


class FeedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path | None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.root = root.resolve() if root else None
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + "/" + path.lstrip("/")

    def route(self, path: str, reply: Reply | Route) -> str:
        self.routes[path] = reply if callable(reply) else (lambda _h, r=reply: r)
        return self.url(path)

    def file_reply(self, path: str) -> Reply:
        if self.root is None:
            return Reply(404, b"not found")
        target = (self.root / path.lstrip("/")).resolve()
        if self.root not in target.parents or not target.is_file():
            return Reply(404, b"not found")
        body = target.read_bytes()
        return Reply(200, body, declared_headers(body))


@contextmanager
def serve(root: Path | None = None) -> Iterator[FeedServer]:
    server = FeedServer(root)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="feed-server", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
