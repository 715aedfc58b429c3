"""Reading server-sent events as a client: the one SSE parser, and OpenAI-style chat chunks on top of it.

The daemon client (:mod:`assistant.client.daemon`: chat turns and the notification stream), the remote model
backend and the benchmark all read streams through here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple


class Event(NamedTuple):
    id: str  # the last ``id:`` seen on the stream (it carries over to later events, as in EventSource)
    event: str  # ``event:``, "message" when the event names none
    data: str  # its ``data:`` lines joined with newlines


def parse_sse(lines: Iterable[str]) -> Iterator[Event]:
    """The events of a stream's lines. A blank line ends an event; ``:`` lines (pings) are comments."""
    event_id, event = "", "message"
    data: list[str] = []
    for line in lines:
        line = line.rstrip("\r")
        if not line:
            if data:
                yield Event(event_id, event, "\n".join(data))
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "id":
            event_id = value
        elif name == "event":
            event = value
        elif name == "data":
            data.append(value)
    if data:
        yield Event(event_id, event, "\n".join(data))


def iter_chunks(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The JSON chunks of an OpenAI-style chat stream, up to ``data: [DONE]``.

    Raises ValueError on malformed JSON.
    """
    for event in parse_sse(lines):
        data = event.data.strip()
        if data == "[DONE]":
            return
        chunk = json.loads(data)
        if not isinstance(chunk, dict):
            raise ValueError(f"a chat stream chunk is not a JSON object: {data[:100]!r}")
        yield chunk


def delta_text(chunk: dict[str, Any]) -> str:
    """The text a chunk adds (all choices joined; we ask for one)."""
    return "".join((c.get("delta") or {}).get("content") or "" for c in chunk.get("choices") or [])
