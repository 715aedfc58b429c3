"""Secrets are never logged (issue 25): httpx's request log (a webhook's password, an ntfy topic, feed and
page URLs) is quiet below WARNING, and the daemon's handler takes user info and token-like query values
out of every line it writes (ours, uvicorn's, a library's), tracebacks included."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from assistant.core.logs import configure_logging, redact_secrets
from assistant.notify.channel import post_checked

SECRETS = ("hunter2", "topic-7f3a9c", "tok-51d2")


class _Ok(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@pytest.fixture
def receiver() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def installed() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    handler = configure_logging("DEBUG", "text")  # even verbose
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_a_webhook_post_logs_neither_its_password_nor_its_topic(
    receiver: int, installed: None, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"http://bob:hunter2@127.0.0.1:{receiver}/topic-7f3a9c?auth=tok-51d2"
    with httpx.Client() as client:
        post_checked(client, url, content=b"hello")
    logged = caplog.text + capsys.readouterr().err
    assert not any(secret in logged for secret in SECRETS), logged
    assert not [r for r in caplog.records if r.name.startswith(("httpx", "httpcore"))]


def test_our_handler_redacts_user_info_and_token_values(
    installed: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An earlier test in this process may have run uvicorn, whose logging config gives its loggers their own
    # handlers and stops propagation: as the daemon's own log setup would, send them to the root handler.
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        for attr, value in (("propagate", True), ("handlers", []), ("level", logging.NOTSET), ("disabled", False)):
            monkeypatch.setattr(logger, attr, value)
    log = logging.getLogger("assistant.feeds.parse")
    log.warning("feedparser raised on %s: %r", "https://bob:hunter2@example.com/feed", ValueError("x"))
    logging.getLogger("uvicorn.error").info('127.0.0.1:5000 - "WebSocket /ws?token=tok-51d2&x=1" [accepted]')
    try:
        raise RuntimeError("GET http://u:hunter2@example.org/?access_token=tok-51d2 failed")
    except RuntimeError:
        log.exception("refreshing feed %s failed", "http://example.org/")
    err = capsys.readouterr().err
    assert not any(secret in err for secret in SECRETS), err
    assert "https://…@example.com/feed" in err
    assert "/ws?token=…&x=1" in err


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("https://user:pw@h.example/x", "https://…@h.example/x"),
        ("see http://token@h.example", "see http://…@h.example"),
        ("/api/notifications/stream?token=abc", "/api/notifications/stream?token=…"),
        ("https://h.example/?a=1&api_key=k&b=2", "https://h.example/?a=1&api_key=…&b=2"),
        (
            "mail bob@example.com about https://h.example/a@b",
            "mail bob@example.com about https://h.example/a@b",
        ),
        ("Authorization: Bearer abc.def", "Authorization: Bearer …"),
    ],
)
def test_redact_secrets(text: str, shown: str) -> None:
    assert redact_secrets(text) == shown
