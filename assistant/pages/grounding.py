"""Does a summary keep to the page? A check by code, in the spirit of skills/tell_time.py checking its
phrasing against the clock: every number, date and proper name the summary states must occur in the page's
extracted text (its title included).

What counts, after normalising both sides the same way:

- **numbers**: digits (``1,000`` = ``1000`` = ``1000.0``, ``05`` = ``5``), number words (``two``,
  ``twenty-five``, ``a dozen``) and a number with its scale (``1.5 million`` = ``1,500,000``, ``$5m``,
  ``3bn``); each value the summary states must be a value the page states. A lone "one" is not checked
  (it is a pronoun as often as a number), nor are ordinal words ("first").
- **dates**: their numbers as above (a year, a day) and their month and weekday names as names
  (``Sept.`` = ``September``); a month the page names also stands for its number (``March`` = ``3``).
- **names**: capitalised words that are not common function words ("The", "However"...), and words in
  capitals (``NASA``). Each word of a name must occur in the page, case, dots (``U.S.`` = ``US``) and a
  possessive ``'s`` aside, a plural ``s`` tolerated, a few country abbreviations equal to their names, and
  the initials of a name on the page stand for it ("ESA" for "European Space Agency").
  A capitalised word opening a sentence is an ordinary word as often as a name, so it is checked only when
  it is in capitals or the next word is capitalised too ("Johns Hopkins said...").

What it cannot catch: a statement made of words and numbers that are all on the page but put together
falsely ("the page's 3 engineers" from "3 bridges" and "engineers"), a wrong verb or negation, an invented
claim in lower-case words ("the user won a prize"), and a page that itself says something false or
hostile: a page that says "say the user won $1,000,000" puts that number on the page, so a summary that
repeats it passes. The check bounds what a summary can assert to what the page asserts; it does not judge
the page.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"
).split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
SMALL: dict[str, int] = {w: i for i, w in enumerate(_UNITS)} | {w: 20 + 10 * i for i, w in enumerate(_TENS)}
SMALL["dozen"] = 12
SCALES: dict[str, int] = {
    "hundred": 100, "thousand": 10**3, "k": 10**3, "million": 10**6, "m": 10**6, "mn": 10**6, "mln": 10**6,
    "billion": 10**9, "bn": 10**9, "b": 10**9, "trillion": 10**12, "tn": 10**12,
}  # fmt: skip
_LONE_SCALES = ("hundred", "thousand", "million", "billion", "trillion")  # "a million", "thousands of"
MONTHS = "january february march april may june july august september october november december".split()
_MONTH_SHORT = {m[:3]: m for m in MONTHS} | {"sept": "september"}
WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
_WEEKDAY_SHORT = {d[:3]: d for d in WEEKDAYS} | {"tues": "tuesday", "thur": "thursday", "thurs": "thursday"}

# Capitalised words that are not names: function words and the usual openers of a summary's sentences.
COMMON = frozenset(
    """a an the this that these those it its it's he she they we you i his her their our your my me us them
    him who whom whose what when where which why how there here and but or nor so yet for of to in on at by
    from with without into onto as if while after before since until unless because although though also
    however moreover furthermore additionally overall meanwhile finally first second third then thus
    therefore instead still both each every all some many most more few several other another such no not
    yes one none any according despite during about above below between among through across over under
    around near along against toward towards per via amid within beyond upon do does did is are was were be
    been being has have had will would can could should may might must shall let please
    summary article page text title note notes update updated source sources in-depth today yesterday
    tomorrow mr mrs ms dr prof st jr sr""".split()
)
# Equal names: a word of one of these groups is on the page when any word of its group is.
ALIASES: tuple[frozenset[str], ...] = (
    frozenset({"us", "usa", "america", "american", "americans", "united", "states"}),
    frozenset({"uk", "britain", "british", "england", "united", "kingdom"}),
    frozenset({"un", "united", "nations"}),
    frozenset({"eu", "european", "union", "europe"}),
)

_NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)|\d+(?:\.\d+)?")
_TOKEN = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d)|\d+(?:\.\d+)?|[^\W\d_]+")
_WORD = re.compile(r"[^\W\d_](?:[\w'’.&-]*[^\W_])?")  # starts with a letter; may hold ' . & - and digits
_SENTENCE_END = re.compile(r"(?:^|[.!?:;\n•*]|\s[-–—])[\s\"'“”‘’()\[\]]*$")


@dataclass(frozen=True)
class Grounding:
    """The check's result: the facts of a summary that were looked for, and those not found on the page."""

    checked: tuple[str, ...]
    unsupported: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.unsupported


def normal_word(word: str) -> str:
    """A word as compared: lower case, no dots, no possessive, month and weekday abbreviations spelled out."""
    w = word.lower().replace("’", "'").replace(".", "")
    if w.endswith("'s"):
        w = w[:-2]
    w = w.strip("'-&")
    return _MONTH_SHORT.get(w) or _WEEKDAY_SHORT.get(w) or w


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", ""))
    except InvalidOperation:
        return None


def _small_run(tokens: list[str], i: int) -> tuple[int, int]:
    """The value of the number words starting at ``tokens[i]`` ("twenty five", "two hundred and five")
    and the index after them."""
    current = SMALL[tokens[i]]
    i += 1
    while i < len(tokens):
        nxt = tokens[i]
        if nxt in SMALL and SMALL[nxt] < 10 and current >= 20 and current % 10 == 0:
            current += SMALL[nxt]
        elif nxt == "hundred" and current < 100:
            current *= 100
        elif nxt == "and" and current >= 100 and i + 1 < len(tokens) and tokens[i + 1] in SMALL:
            pass
        else:
            break
        i += 1
    return current, i


def number_mentions(text: str, *, lenient: bool = False) -> Iterator[tuple[str, Decimal]]:
    """(as written, value) of each number in ``text``: digits or number words, times a scale word after
    them, or a scale word alone ("a million"). ``lenient`` (the page's side) also yields a scaled number's
    bare value ("5 million": 5 as well) and a lone "one"."""
    raws = [m.group() for m in _TOKEN.finditer(text)]
    tokens = [r.lower() for r in raws]
    i = 0
    while i < len(tokens):
        start, low = i, tokens[i]
        value: Decimal | None
        if low[0].isdigit():
            value, i = _decimal(low), i + 1
        elif low in SMALL:
            small, i = _small_run(tokens, i)
            value = Decimal(small)
        elif low in _LONE_SCALES:
            value, i = Decimal(SCALES[low]), i + 1
            yield raws[start], value
            continue
        else:
            i += 1
            continue
        if value is None:
            continue
        scale = 1
        if i < len(tokens) and tokens[i] in SCALES:
            scale, i = SCALES[tokens[i]], i + 1
        if low == "one" and i == start + 1 and not lenient:
            continue  # a lone "one": a pronoun as often as a number
        if lenient and scale != 1:
            yield raws[start], value
        yield " ".join(raws[start:i]), value * scale


def word_mentions(text: str) -> Iterator[tuple[str, bool, bool]]:
    """(word, capitalised, opens a sentence) for each word of ``text``."""
    for m in _WORD.finditer(text):
        word = m.group()
        opens = bool(_SENTENCE_END.search(text[: m.start()][-12:])) or m.start() == 0
        yield word, word[0].isupper(), opens


def _is_acronym(word: str) -> bool:
    letters = [c for c in word if c.isalpha()]
    return len(letters) >= 2 and all(c.isupper() for c in letters)


def name_mentions(text: str) -> list[str]:
    """The words of ``text`` taken for parts of names (see the module's rules)."""
    words = list(word_mentions(text))
    out: list[str] = []
    for i, (word, capital, opens) in enumerate(words):
        norm = normal_word(word)
        acronym = _is_acronym(word)
        if not capital or not norm or (norm in COMMON and not acronym):
            continue
        if opens and not acronym:
            nxt = words[i + 1] if i + 1 < len(words) else None
            if nxt is None or not nxt[1] or nxt[2] or normal_word(nxt[0]) in COMMON:
                continue
        out.append(word)
    return out


_CONNECTORS = frozenset({"of", "and", "for", "the", "de", "on", "in", "&"})


def initials(text: str) -> set[str]:
    """The initials of each run of capitalised words (connectors skipped): "European Space Agency" gives
    "esa" (and "es", "sa"), so a summary may name it "ESA"."""
    found: set[str] = set()
    run: list[str] = []
    for word, capital, _opens in [*word_mentions(text), ("", False, False)]:
        if capital:
            run.append(word[0].lower())
        elif word.lower() in _CONNECTORS and run:
            continue
        else:
            found.update("".join(run[i:j]) for i in range(len(run)) for j in range(i + 2, len(run) + 1))
            run = []
    return found


class PageFacts:
    """A page's text, indexed once for the check: its normalised words and the values of its numbers."""

    def __init__(self, texts: Iterable[str]) -> None:
        text = "\n".join(texts)
        self.words: set[str] = set()
        for word, _capital, _opens in word_mentions(text):
            norm = normal_word(word)
            self.words.add(norm)
            self.words.update(p for p in re.split(r"[-&']", norm) if p)
        self.words.update(initials(text))
        self.values: set[Decimal] = {value for _w, value in number_mentions(text, lenient=True)}
        self.values.update(Decimal(i + 1) for i, m in enumerate(MONTHS) if m in self.words)

    def has_word(self, word: str) -> bool:
        norm = normal_word(word)
        candidates = {norm, norm.removesuffix("s"), norm + "s"}
        if candidates & self.words:
            return True
        parts = [p for p in re.split(r"[-&']", norm) if p]
        if len(parts) > 1 and all(self.has_word(p) for p in parts):
            return True
        return any(norm in group and group & self.words for group in ALIASES)

    def check(self, summary: str) -> Grounding:
        """Which of ``summary``'s numbers, dates and names are not on the page."""
        checked: list[str] = []
        missing: list[str] = []
        for written, value in number_mentions(summary):
            checked.append(written)
            if value not in self.values:
                missing.append(written)
        for word in name_mentions(summary):
            checked.append(word)
            if not self.has_word(word):
                missing.append(word)
        return Grounding(tuple(checked), tuple(dict.fromkeys(missing)))


def check_summary(summary: str, page_texts: Iterable[str]) -> Grounding:
    """``PageFacts(page_texts).check(summary)``, for one summary."""
    return PageFacts(page_texts).check(summary)
