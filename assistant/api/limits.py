"""Limits every router shares, so hostile input is a 400 naming the field, never a 500.

- Integers that reach SQLite fit its 64-bit INTEGER (``Offset``, ``FeedId``, ``NotificationId``): an
  oversized one fails FastAPI's validation instead of raising OverflowError in the driver.
- ``CheckedJSONRoute`` looks at a JSON body before FastAPI parses it: it must be UTF-8, nested at most
  ``MAX_JSON_DEPTH`` levels (Python's parser and encoder recurse, and a deep body made them fail with a
  RecursionError), and hold no lone UTF-16 surrogate (``"\\ud800"`` is valid JSON but not text: SQLite,
  the tokenizer and the response encoder cannot encode it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Path, Query, Request, Response
from fastapi.routing import APIRoute

from assistant.core.errors import BadRequest

SQLITE_INT_MAX = 2**63 - 1
MAX_JSON_DEPTH = 64

Offset = Annotated[int, Query(ge=0, le=SQLITE_INT_MAX, description="rows to skip")]
FeedId = Annotated[int, Path(ge=0, le=SQLITE_INT_MAX)]
NotificationId = Annotated[int, Path(ge=0, le=SQLITE_INT_MAX)]

# A JSON string (skipped whole) or one bracket; only brackets change the depth.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def json_depth_exceeds(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text nests arrays/objects deeper than ``limit`` (strings are not counted)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    for match in _TOKEN.finditer(body):
        char = match.group()
        if char in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif char in (b"]", b"}"):
            depth -= 1
    return False


def lone_surrogate_at(value: Any) -> str | None:
    """The location ("messages.0.content") of the first string or key holding a lone surrogate, or None."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if not _encodes(item):
                return where or "body"
        elif isinstance(item, dict):
            for key, child in item.items():
                path = f"{where}.{key}" if where else str(key)
                if not _encodes(str(key)):
                    return f"{where or 'body'} (a key)"
                stack.append((child, path))
        elif isinstance(item, list):
            stack.extend((child, f"{where}.{i}" if where else str(i)) for i, child in enumerate(item))
    return None


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_json_body(body: bytes) -> None:
    """BadRequest naming what is wrong with a JSON body FastAPI would otherwise choke on later."""
    if not body:
        return
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(
            f"body: not valid UTF-8 (byte {exc.start}); send JSON text encoded as UTF-8", code="invalid_json"
        ) from None
    if json_depth_exceeds(body):
        raise BadRequest(f"body: JSON nested deeper than {MAX_JSON_DEPTH} levels", code="invalid_json")
    if _SURROGATE_ESCAPE.search(body):
        try:
            data = json.loads(body)
        except ValueError:
            return  # not JSON: FastAPI says so
        where = lone_surrogate_at(data)
        if where is not None:
            shown = where if len(where) <= 120 else where[:120] + "..."
            raise BadRequest(
                f"{shown}: holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text",
                code="invalid_text",
            )


class CheckedJSONRoute(APIRoute):
    """An APIRoute that runs ``check_json_body`` on the body before FastAPI parses it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            if request.method in ("POST", "PUT", "PATCH", "DELETE"):
                check_json_body(await request.body())  # buffered: the handler reads the same bytes
            return await handler(request)

        return checked
