"""The candidate rules of benchmarks/ablate_dense.py (issue 26), pure functions so tests can hold them:
what the embedder sees for a conversation turn, what it sees for a question, and the query-side date prior.

None of them is used by the daemon: none earned its place (docs/memory.md, "The dense half on
conversations"). They stay here so the ablation can be run again, e.g. with another embedder.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from memory.context import day_words
from memory.eval import Dataset, as_memory


@dataclass(frozen=True)
class Turn:
    doc_id: str
    text: str
    conversation: str
    said: float  # POSIX seconds
    before: list[str] = field(default_factory=list)  # up to three turns before it, oldest first

    @property
    def day(self) -> str:
        return day_words(datetime.fromtimestamp(self.said, UTC).date())


def turns_of(data: Dataset) -> list[Turn]:
    """The corpus's conversation turns in file order (the order they were said), each with the turns before."""
    out: list[Turn] = []
    before: dict[str, list[str]] = collections.defaultdict(list)
    for doc_id, doc in data.corpus.items():
        m = as_memory(doc_id, doc)
        if m is None or m.conversation_id is None:
            continue
        said = m.created_at.timestamp() if m.created_at else 0.0
        out.append(Turn(doc_id, m.text, m.conversation_id, said, list(before[m.conversation_id][-3:])))
        before[m.conversation_id].append(m.text)
    return out


def with_caption(doc: Mapping[str, Any]) -> str:
    """A turn's text with the photo it shared, "... [shares a photo of ...]" (LoCoMo's metadata
    ``blip_caption``, as LoCoMo's own retrieval baselines read a turn); unchanged when it shared none."""
    text = str(doc.get("text") or "")
    caption = (doc.get("metadata") or {}).get("blip_caption")
    return f"{text} [shares {caption}]" if isinstance(caption, str) and caption.strip() else text


# -- the turn: who said it ----------------------------------------------------------------------

_SPEAKER_RE = re.compile(r"^\s*([A-Z][\w.'-]{0,30}(?: [A-Z][\w.'-]{0,30})?): (.+)$", re.DOTALL)
_FIRST = (
    (r"I'm|I am", "{n} is"), (r"I've|I have", "{n} has"), (r"I'll|I will", "{n} will"), (r"I'd", "{n} would"),
    (r"I was", "{n} was"), (r"I", "{n}"), (r"me|myself", "{n}"), (r"my|mine", "{n}'s"),
)
_SECOND = (
    (r"you're|you are", "{n} is"), (r"you've|you have", "{n} has"), (r"you'll", "{n} will"),
    (r"you'd", "{n} would"), (r"you were", "{n} was"), (r"your|yours", "{n}'s"), (r"yourself", "{n}"),
    (r"you", "{n}"),
)


def speaker_of(text: str) -> str | None:
    m = _SPEAKER_RE.match(text)
    return m.group(1) if m else None


def unspeak(text: str) -> str:
    """The turn's words without the "Name: " in front."""
    m = _SPEAKER_RE.match(text)
    return m.group(2) if m else text


def _persons(words: str, rules: tuple[tuple[str, str], ...], name: str) -> str:
    compiled = [(re.compile(rf"(?:{p})", re.IGNORECASE), r) for p, r in rules]
    pattern = re.compile(r"\b(" + "|".join(f"(?:{p})" for p, _ in rules) + r")\b", re.IGNORECASE)

    def one(m: re.Match[str]) -> str:
        return next((r.format(n=name) for rx, r in compiled if rx.fullmatch(m.group(0))), m.group(0))

    return pattern.sub(one, words)


def resolve_persons(text: str, previous: Sequence[str] = ()) -> str:
    """"Name: words" with the first-person words said as Name ("I went" -> "Name went", "my" -> "Name's")
    and the second-person ones as the latest earlier speaker who is someone else; others unchanged."""
    m = _SPEAKER_RE.match(text)
    if not m:
        return text
    speaker, words = m.group(1), _persons(m.group(2), _FIRST, m.group(1))
    other = next((s for s in map(speaker_of, reversed(previous)) if s and s != speaker), None)
    if other:
        words = _persons(words, _SECOND, other)
    return f"{speaker}: {words}"


# -- the question ---------------------------------------------------------------------------------

_QUESTION_RE = re.compile(
    r"^\s*(?:(?:when|what|where|who|whom|whose|which|why|how(?: many| much| long| often| old)?)\s+)"
    r"(?:(?:did|does|do|is|are|was|were|has|have|had|will|would|can|could|should)\s+)?",
    re.IGNORECASE,
)


def strip_question(query: str) -> str:
    """The question word and its auxiliary off the front, "?" off the end ("When did Gina get her
    tattoo?" -> "Gina get her tattoo"): a question closer to the statement that answers it."""
    stripped = _QUESTION_RE.sub("", query).strip().rstrip("?").strip()
    return stripped or query


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
# Month names capitalised only ("may" is a verb); a year alone only after in/of/during.
_DATE_RE = re.compile(
    rf"\b(?:(?P<month>{'|'.join(_MONTHS)})(?:\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?,?)?"
    r"(?:\s+(?:of\s+)?(?P<year>(?:19|20)\d\d))?|(?:in|of|during)\s+(?P<year_only>(?:19|20)\d\d))\b"
)


def named_period(query: str) -> Callable[[date], bool] | None:
    """Whether a day falls in the month, day or year the question names; None when it names none."""
    m = _DATE_RE.search(query)
    if not m:
        return None
    if m.group("year_only"):
        year = int(m.group("year_only"))
        return lambda d: d.year == year
    month = _MONTHS.index(m.group("month")) + 1
    year = int(m.group("year")) if m.group("year") else None
    day = int(m.group("day")) if m.group("day") else None
    return lambda d: d.month == month and year in (None, d.year) and day in (None, d.day)


# -- the rules the ablation compares ----------------------------------------------------------------

def _join(*parts: str) -> str:
    return "\n".join(p for p in parts if p)


TURN_RULES: dict[str, Callable[[Turn], list[str]]] = {
    "turn alone (today)": lambda t: [t.text],
    "day + turn": lambda t: [f"{t.day}. {t.text}"],
    "1 before + turn": lambda t: [_join(*t.before[-1:], t.text)],
    "2 before + turn": lambda t: [_join(*t.before[-2:], t.text)],
    "day + 1 before + turn": lambda t: [_join(f"{t.day}.", *t.before[-1:], t.text)],
    "best of: turn | 1 before + turn": lambda t: [t.text, _join(*t.before[-1:], t.text)],
    "best of: turn | 2 before + turn": lambda t: [t.text, _join(*t.before[-2:], t.text)],
    "turn without 'Speaker:'": lambda t: [unspeak(t.text)],
    "persons resolved": lambda t: [resolve_persons(t.text, t.before)],
    "persons resolved, without 'Speaker:'": lambda t: [unspeak(resolve_persons(t.text, t.before))],
    "best of: turn | persons resolved": lambda t: [t.text, resolve_persons(t.text, t.before)],
}
QUERY_RULES: dict[str, Callable[[str], str]] = {
    "question as asked": lambda q: q,
    "question words stripped": strip_question,
}
