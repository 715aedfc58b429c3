"""Phrases: what users say or type to run a skill without a slash. A phrase is matched against a whole
message, case-insensitively; ``{name}`` in it captures words."""

from __future__ import annotations

import re

_PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*)\}")
_CAPTURE = r"\S(?:[^\n]{0,78}\S)?"


def normalize_phrase(text: str) -> str:
    """Whitespace collapsed, typographic apostrophes straightened, end punctuation dropped (case kept)."""
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    return re.sub(r"[\s?.!]+$", "", re.sub(r"\s+", " ", text).strip())


def phrase_placeholders(phrase: str) -> list[str]:
    return _PLACEHOLDER.findall(phrase)


def phrase_pattern(phrase: str | re.Pattern[str]) -> re.Pattern[str]:
    """A phrase as a regex matched against a whole (normalized) message, case-insensitively: the words
    as written, ``{name}`` capturing one to 80 characters. A compiled regex is used as it is."""
    if isinstance(phrase, re.Pattern):
        return phrase
    parts = _PLACEHOLDER.split(normalize_phrase(phrase))
    out: list[str] = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(f"(?P<{part}>{_CAPTURE})")
        else:
            out.append(r"\s+".join(re.escape(w) for w in part.split(" ")))
    return re.compile("".join(out), re.IGNORECASE)


def phrase_text(phrase: str | re.Pattern[str]) -> str:
    """A phrase as it is written (a compiled regex: its pattern)."""
    return phrase if isinstance(phrase, str) else phrase.pattern
