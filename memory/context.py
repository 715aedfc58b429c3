"""What a conversation turn is indexed with besides its own words (the turn stays the unit returned).

A turn on its own is often unsearchable: "Yes, last Saturday, with the kids!" answers a question asked the
turn before, and says when only relative to the day it was said. So a turn of a conversation is indexed
with:

- the turns just before it in the same conversation (``previous`` of them, oldest first);
- the day it was said ("8 May 2023"), and the days its relative dates name, resolved against that day
  ("yesterday" -> "7 May 2023", "last Saturday" -> "6 May 2023", "last month" -> "April 2023").

BM25 sees this as a second, lower-weighted column (``KeywordIndex.search(context_weight=)``); the embedder
sees the turn alone (with the turns before, it bought nothing once BM25 had them, and embedding would cost two
or three times as much). What each part buys is measured in docs/memory.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december")
_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
            "eight": 8, "nine": 9, "ten": 10, "a couple of": 2, "a few": 3, "few": 3, "couple of": 2}
_UNIT = r"(day|week|month|year)s?"
_COUNT = r"(\d{1,2}|a couple of|couple of|a few|few|an?|one|two|three|four|five|six|seven|eight|nine|ten)"
_RELATIVE_RE = re.compile(
    r"\b(?:(?P<simple>yesterday|today|tonight|tomorrow|this morning|last night)"
    rf"|(?P<dir>last|next|this|past) (?P<what>weekend|week|month|year|{'|'.join(_WEEKDAYS)})"
    rf"|(?P<n>{_COUNT}) {_UNIT} (?P<way>ago|from now|later))\b",
    re.IGNORECASE,
)


def day_words(d: date) -> str:
    return f"{d.day} {_MONTHS[d.month - 1].capitalize()} {d.year}"


def month_words(d: date) -> str:
    return f"{_MONTHS[d.month - 1].capitalize()} {d.year}"


def _add_months(d: date, months: int) -> date:
    m = d.month - 1 + months
    return date(d.year + m // 12, m % 12 + 1, 1)


def resolve_relative_dates(text: str, said: date) -> list[str]:
    """The dates ``text``'s relative phrases name, as words, resolved against the day it was said."""
    return list(dict.fromkeys(words for _, words in _dated_phrases(text, said)))


def with_dates_inline(text: str, said: date) -> str:
    """``text`` with each relative date phrase followed by the date it names, for a reader on another day:
    "I went to the dentist yesterday" said on 8 May 2023 -> "... yesterday (7 May 2023)"."""
    out, last = [], 0
    for m, words in _dated_phrases(text, said):
        out.append(text[last : m.end()] + f" ({words})")
        last = m.end()
    return "".join(out) + text[last:]


def _dated_phrases(text: str, said: date) -> list[tuple[re.Match[str], str]]:
    out: list[tuple[re.Match[str], str]] = []
    for m in _RELATIVE_RE.finditer(text):
        simple = (m.group("simple") or "").lower()
        if simple:
            shift = {"yesterday": -1, "last night": -1, "tomorrow": 1}.get(simple, 0)
            out.append((m, day_words(said + timedelta(days=shift))))
            continue
        if m.group("dir"):
            way, what = m.group("dir").lower(), m.group("what").lower()
            sign = -1 if way in ("last", "past") else 1 if way == "next" else 0
            if what in _WEEKDAYS:
                delta = (_WEEKDAYS.index(what) - said.weekday()) % 7
                if sign < 0:
                    delta = delta - 7 if delta > 0 else -7
                elif sign > 0 and delta == 0:
                    delta = 7
                out.append((m, day_words(said + timedelta(days=delta))))
            elif what in ("week", "weekend"):
                out.append((m, "week of " + day_words(said + timedelta(days=7 * sign))))
            elif what == "month":
                out.append((m, month_words(_add_months(said, sign))))
            else:
                out.append((m, str(said.year + sign)))
            continue
        count_word = m.group("n").lower()
        n = int(count_word) if count_word.isdigit() else _NUMBERS.get(count_word, 1)
        unit = m.group(0).lower().split()[-2].rstrip("s")
        sign = -1 if m.group("way").lower() == "ago" else 1
        if unit == "day":
            out.append((m, day_words(said + timedelta(days=sign * n))))
        elif unit == "week":
            out.append((m, "week of " + day_words(said + timedelta(days=7 * sign * n))))
        elif unit == "month":
            out.append((m, month_words(_add_months(said, sign * n))))
        else:
            out.append((m, str(said.year + sign * n)))
    return out


def turn_context(previous: Sequence[str], text: str, created_at: float, *, dates: bool = True) -> str:
    """The BM25 context column of a conversation turn: the turns before it, then its dates."""
    parts = [p for p in previous if p]
    if dates:
        said = datetime.fromtimestamp(created_at, UTC).date()
        parts.append(day_words(said))
        parts.extend(resolve_relative_dates(text, said))
    return "\n".join(parts)

