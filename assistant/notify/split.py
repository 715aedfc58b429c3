"""A text too long for one notification, as several: cut at line ends, numbered in the title."""

from __future__ import annotations

from assistant.notify.models import BODY_MAX, TITLE_MAX


def split_body(text: str, limit: int = BODY_MAX) -> list[str]:
    """``text`` in parts of at most ``limit`` characters, each a run of whole lines (the line breaks
    between parts are dropped, blank lines at a part's edge too); only a line longer than ``limit`` is
    itself cut. A text that fits is returned as the one part."""
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    current: list[str] = []
    size = 0

    def flush() -> None:
        nonlocal size
        body = "\n".join(current).strip("\n")
        if body:
            parts.append(body)
        current.clear()
        size = 0

    for line in text.split("\n"):
        while len(line) > limit:
            flush()
            parts.append(line[:limit])
            line = line[limit:]
        if current and size + 1 + len(line) > limit:
            flush()
        size += len(line) + (1 if current else 0)
        current.append(line)
    flush()
    return parts


def part_title(title: str, index: int, count: int) -> str:
    """``title`` of part ``index`` (from 0) of ``count``: "Digest (2/3)", within TITLE_MAX; unchanged when
    there is one part."""
    if count <= 1:
        return title
    suffix = f" ({index + 1}/{count})"
    return title[: TITLE_MAX - len(suffix)] + suffix
