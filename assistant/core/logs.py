"""Logging: one line per record, JSON (``server.log_format = "json"``) or text, with the id of the request or
scheduled run it belongs to; no line carries a URL's user info, a token-like query value or a bearer token
(``redact_secrets``), and httpx's request log (whole URLs) stays below WARNING.

The ids live in context variables: the request guard sets ``request_id`` for each HTTP request (and returns
it as ``X-Request-ID``), the scheduler sets ``run_id`` for each scheduled run. asyncio tasks and
``run_in_threadpool`` copy the context, and the generation worker runs each job in the context it was
submitted from, so the model's log lines carry the id of the request or run that asked.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal, TextIO

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
run_id: ContextVar[str | None] = ContextVar("run_id", default=None)

LogFormat = Literal["json", "text"]
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s:%(ids)s %(message)s"
# An incoming X-Request-ID is kept when it looks like an id (a proxy's, a client's); else a new one is made.
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


# Secrets that URLs and headers carry: user info (``https://bob:pw@host``), token-like query values
# (``?token=``, ``auth=``, ``api_key=``...) and a bearer token. The daemon's handler takes them out of every
# line it writes; httpx's and httpcore's own request logs (whole URLs) stay below WARNING.
_USERINFO = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@?#\"']+@")
_TOKEN_QUERY = re.compile(
    r"([?&](?:token|access_token|api_key|apikey|key|auth|password|passwd|secret|sig|signature)=)[^&#\s\"']+",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(Bearer\s+)[A-Za-z0-9._~+/=-]+")
QUIET_LIBRARIES = ("httpx", "httpcore")


def redact_secrets(text: str) -> str:
    """``text`` with URL user info, token-like query values and bearer tokens replaced by ``…``."""
    text = _USERINFO.sub(r"\1…@", text)
    text = _TOKEN_QUERY.sub(r"\1…", text)
    return _BEARER.sub(r"\1…", text)


class RedactingFormatter(logging.Formatter):
    """Formats with ``inner``, then takes secrets out of the whole line, traceback included."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return redact_secrets(self.inner.format(record))


def new_id() -> str:
    return uuid.uuid4().hex[:16]


def accept_request_id(given: str | None) -> str:
    """``given`` when it is a sane id (letters, digits, ``._:-``, at most 64), else a new id."""
    if given and _SANE_ID.fullmatch(given):
        return given
    return new_id()


@contextmanager
def run_context(value: str) -> Iterator[None]:
    """Log lines inside carry ``run_id=value``."""
    token = run_id.set(value)
    try:
        yield
    finally:
        run_id.reset(token)


class ContextFilter(logging.Filter):
    """Adds ``request_id``, ``run_id`` and ``ids`` (the two as text, or "") to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        rid, run = request_id.get(), run_id.get()
        record.request_id = rid
        record.run_id = run
        record.ids = "".join(f" {k}={v}" for k, v in (("request_id", rid), ("run_id", run)) if v)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, request_id/run_id when set, exc when any."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("request_id", "run_id"):
            value = getattr(record, key, None)
            if value:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class _OurHandler(logging.StreamHandler[TextIO]):
    """The handler configure_logging installs (others, such as a test's capture, are left alone). It writes
    to whatever ``sys.stderr`` is when a record comes (a redirected or captured stream)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_logging(level: str = "INFO", fmt: LogFormat = "text") -> logging.Handler:
    """Send every log record (ours, uvicorn's, libraries') to stderr through one formatter; returns the
    handler (a later call replaces it)."""
    handler = _OurHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(
        RedactingFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _OurHandler)]:  # a second call replaces the first
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn's own loggers keep no handlers of their own: they propagate to the one above.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uv = logging.getLogger(name)
        uv.handlers.clear()
        uv.propagate = True
    # httpx logs every request's whole URL at INFO (a webhook's password, an ntfy topic, a feed's token).
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler
