"""Parameter descriptions and a skill's description, read from a function's docstring (Google-style
``Args:`` sections or Sphinx ``:param name:`` lines)."""

from __future__ import annotations

import re

_SECTION = re.compile(r"^(?:Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments):\s*$")
_ENTRY = re.compile(r"^\*{0,2}(?P<name>[A-Za-z_]\w*)\s*(?:\([^)]*\))?\s*:\s*(?P<text>.*)$")
_SPHINX = re.compile(r"^:param\s+(?:[^:]*\s)?(?P<name>[A-Za-z_]\w*)\s*:\s*(?P<text>.*)$")


def docstring_summary(doc: str) -> str:
    """The first paragraph of a (cleaned) docstring, on one line."""
    lines: list[str] = []
    for line in doc.strip().splitlines():
        if not line.strip() or _SECTION.match(line.strip()) or line.strip().startswith(":param"):
            break
        lines.append(line.strip())
    return " ".join(lines)


def docstring_params(doc: str) -> dict[str, str]:
    """Parameter descriptions from a Google-style ``Args:`` section or Sphinx ``:param name:`` lines."""
    found: dict[str, str] = {}
    lines = doc.expandtabs().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        sphinx = _SPHINX.match(line.strip())
        if sphinx:
            found[sphinx["name"]] = sphinx["text"].strip()
        if not _SECTION.match(line.strip()):
            i += 1
            continue
        indent = len(line) - len(line.lstrip())
        current: str | None = None
        entry_indent: int | None = None
        i += 1
        while i < len(lines):
            raw = lines[i]
            depth = len(raw) - len(raw.lstrip())
            if raw.strip() and depth <= indent:
                break
            entry = _ENTRY.match(raw.strip())
            if raw.strip() and entry and (entry_indent is None or depth <= entry_indent):
                entry_indent = depth
                current = entry["name"]
                found[current] = entry["text"].strip()
            elif raw.strip() and current is not None:
                found[current] = f"{found[current]} {raw.strip()}".strip()
            i += 1
    return found
