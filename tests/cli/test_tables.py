"""CLI tables fit the terminal: `assistant memory search` at 80 columns keeps ids whole and text readable."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from assistant.cli.memory import search_table

HITS = [
    {
        "id": "mem-" + "0123456789abcdef0123",
        "score": 0.8312,
        "created_at": "2026-12-07T05:00:00Z",
        "source": "feed:https://example.com/a/very/long/feed/url.xml",
        "retrievers": ["dense", "keyword"],
        "text": "The car goes to the garage on Tuesday for its yearly service and the new winter tyres " * 3,
    },
    {"id": "mem-x", "score": 0.5, "created_at": "2026-12-06T05:00:00Z", "source": "note",
     "retrievers": ["keyword"], "text": "short"},
]  # fmt: skip


@pytest.mark.parametrize("width", [80, 100, 140])
def test_memory_search_table_fits_the_terminal(width: int) -> None:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None)
    console.print(search_table(HITS, width))
    lines = out.getvalue().splitlines()
    assert all(len(line) <= width for line in lines), lines
    screen = out.getvalue()
    assert "mem-0123456789abcdef0123" in screen  # an id stays whole: `memory forget` needs it
    assert "The car goes to the garage" in screen  # text wraps at words, not one word per line
    assert len(lines) < 20
    assert ("2026-12-07" in screen) == (width >= 110)
