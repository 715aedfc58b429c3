"""Reading an OpenAI-style chat stream (server-sent events) as a client: the remote backend, the
terminal client and the benchmark all read the same format."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any


def iter_chunks(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The JSON chunks of ``data:`` lines, up to ``data: [DONE]``. Raises ValueError on malformed JSON."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        yield json.loads(data)


def delta_text(chunk: dict[str, Any]) -> str:
    """The text a chunk adds (all choices joined; we ask for one)."""
    return "".join((c.get("delta") or {}).get("content") or "" for c in chunk.get("choices") or [])
