"""`time`: the current local time and date. The clock gives the facts; the model may only phrase them,
and its sentence is used only when it states exactly the right time (and no wrong date).

The phrasing is a cascade, the shape of ``seuss``'s: a prompt that shows the shape (fixed example facts
and sentences as earlier turns); a llama.cpp grammar built from the facts (one sentence whose only
digits are the exact time and, if the model wants it, the exact date: it cannot write a wrong number); the
check by code (``phrasing_is_right``: the right hour and minute, no wrong weekday, month, day or year);
several tries with different seeds inside a time budget; else the plain sentence of facts. A ``tone``
changes only how the sentence sounds: the grammar and the check stay the same."""

from __future__ import annotations

import re
import time
import zlib
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from assistant.core.localtime import get_zone, zone_for_place
from assistant.core.text import clean_text
from assistant.llm.types import ChatMessage, GenerationParams
from assistant.skillkit.api import SkillContext, SkillResult, skill

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)

_CLOCK = re.compile(
    r"(?<![:.\d])\b(\d{1,2})\s*[:.h]\s*(\d{2})(?!\d)\s*(a\.?\s?m\b\.?|p\.?\s?m\b\.?)?", re.IGNORECASE
)
_HOUR_ONLY = re.compile(r"(?<![:.\d])\b(\d{1,2})\s*(a\.?\s?m\b\.?|p\.?\s?m\b\.?|o'?\s?clock)", re.IGNORECASE)
_ORDINAL = re.compile(r"\b(\d{1,2})(?:st|nd|rd|th)\b", re.IGNORECASE)
_YEAR = re.compile(r"\b(1[89]\d\d|2\d\d\d)\b")
_MONTH_DAY = re.compile(r"\b(" + "|".join(MONTHS) + r")\s+(\d{1,2})\b", re.IGNORECASE)
_DAY_MONTH = re.compile(r"\b(\d{1,2})\s+(?:of\s+)?(" + "|".join(MONTHS) + r")\b", re.IGNORECASE)


def clock_12h(local: datetime) -> str:
    return f"{local.hour % 12 or 12}:{local.minute:02d} {'AM' if local.hour < 12 else 'PM'}"


def facts(local: datetime) -> str:
    """The sentence of facts; also the plain template used when the model's phrasing fails the check."""
    zone = getattr(local.tzinfo, "key", None) or local.tzname() or "UTC"
    abbr = local.tzname() or ""
    zone_text = zone if abbr in ("", zone) else f"{zone} ({abbr})"
    return (
        f"It's {clock_12h(local)} ({local:%H:%M}) on {local:%A}, {local.day} {local:%B %Y}, "
        f"time zone {zone_text}."
    )


def _stated_times(text: str) -> list[tuple[int, int, str | None]]:
    found: list[tuple[int, int, str | None]] = []
    for m in _CLOCK.finditer(text):
        suffix = m.group(3)
        found.append((int(m.group(1)), int(m.group(2)), suffix[0].lower() if suffix else None))
    for m in _HOUR_ONLY.finditer(text):
        suffix = m.group(2).lower()
        found.append((int(m.group(1)), 0, suffix[0] if suffix[0] in "ap" else None))
    return found


def _matches(stated: tuple[int, int, str | None], local: datetime) -> bool:
    hour, minute, suffix = stated
    if minute != local.minute:
        return False
    if suffix is None:  # 24-hour clock ("19:30", "07:30", "7:30" in the morning)
        return hour == local.hour
    if not 1 <= hour <= 12:
        return False
    return (hour % 12) + (12 if suffix == "p" else 0) == local.hour


def phrasing_is_right(text: str, local: datetime) -> bool:
    """True when ``text`` states the right hour and minute, and every time, weekday, month, day or year
    it mentions is the true one. The model may leave out the date but may not get it wrong."""
    if not text or len(text) > 300 or "http" in text.lower():
        return False
    times = _stated_times(text)
    if not times or not all(_matches(t, local) for t in times):
        return False
    lowered = text.lower()
    if any(d in lowered for d in WEEKDAYS if d != WEEKDAYS[local.weekday()]):
        return False
    if any(_mentions_month(lowered, m) for m in MONTHS if m != MONTHS[local.month - 1]):
        return False
    if any(int(y) != local.year for y in _YEAR.findall(text)):
        return False
    days = [int(d) for d in _ORDINAL.findall(text)]
    days += [int(m.group(2)) for m in _MONTH_DAY.finditer(text)]
    days += [int(m.group(1)) for m in _DAY_MONTH.finditer(text)]
    return all(d == local.day for d in days)


def _mentions_month(lowered: str, month: str) -> bool:
    if month == "may":  # also a verb: count it only next to a number ("May 3", "3 May")
        return re.search(r"\bmay\s+\d|\d\s+(?:of\s+)?may\b", lowered) is not None
    return re.search(rf"\b{month}\b", lowered) is not None


def _first_sentence(text: str) -> str:
    line = text.strip().split("\n", 1)[0].strip().strip('"').strip()
    return line


# Written for this project: the shape shown to the model (facts in, one sentence out). No weekday or month
# is written outside the date's own form: a small model copies the examples' words, and "a Friday
# afternoon" copied on a Saturday is a wrong fact.
EXAMPLES: tuple[tuple[str, str], ...] = (
    (
        "It's 9:05 AM (09:05) on Tuesday, 3 March 2026, time zone Europe/Paris (CET).",
        "Good morning, it's 9:05 AM on Tuesday, 3 March 2026.",
    ),
    (
        "It's 11:40 PM (23:40) on Saturday, 8 August 2026, time zone America/Chicago (CDT).",
        "It's 11:40 PM, time to get some sleep.",
    ),
    (
        "It's 2:15 PM (14:15) on Friday, 20 November 2026, time zone Asia/Singapore (+08).",
        "Right now it's 2:15 PM on Friday, 20 November 2026.",
    ),
)
ASK = "One friendly sentence:"
# What the grammar allows around the numbers: lower-case words, no digits, so no weekday or month name
# of its own either (a small model writes them capitalised); the date's literal form has the true ones.
WORDS = r"[a-z ,'-]"


def _say(facts_text: str) -> str:
    return f"Facts: {facts_text}\n{ASK}"


def _gbnf_literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sentence_grammar(local: datetime) -> str:
    """A GBNF grammar for one sentence that states ``local``'s time exactly (12-hour "1:00 PM" or 24-hour
    "13:00") and may add its exact date ("Thursday, 15 January 2026", "15 January 2026" or "January 15,
    2026"); every other character after the first (a capital) is a lower-case letter, a space or ``,'-``,
    so no other number, weekday or month can be written."""
    times = [clock_12h(local), f"{local:%H:%M}"]
    dates = [
        f"{local:%A}, {local.day} {local:%B %Y}",
        f"{local.day} {local:%B %Y}",
        f"{local:%B} {local.day}, {local.year}",
    ]
    return (
        f'root ::= [A-Z] {WORDS}{{2,40}} " " clock ({WORDS}{{1,30}} date)? {WORDS}{{0,40}} [.!]\n'
        f"clock ::= {' | '.join(_gbnf_literal(t) for t in times)}\n"
        f"date ::= {' | '.join(_gbnf_literal(d) for d in dates)}\n"
    )


def phrase_sentence(
    ctx: SkillContext,
    local: datetime,
    plain: str,
    *,
    tone: str | None = None,
    tries: int = 3,
    seconds: float = 6.0,
    grammar: bool = True,
) -> tuple[str, bool, int]:
    """The model's sentence for these facts and whether it was used, with the number of model calls: the
    first sentence within ``tries`` and ``seconds`` that passes ``phrasing_is_right``, else ``plain``."""
    if ctx.worker is None:
        return plain, False, 0
    system = (
        "Rewrite the facts as one short, friendly sentence. Keep the time exactly as written "
        "and do not add any other facts."
    )
    if tone:
        system += f" Say it in this tone: {tone}."
    messages = [ChatMessage("system", system)]
    for facts_text, sentence in EXAMPLES:
        messages += [ChatMessage("user", _say(facts_text)), ChatMessage("assistant", sentence)]
    messages.append(ChatMessage("user", _say(plain)))
    gbnf = sentence_grammar(local) if grammar else None
    base = zlib.crc32(plain.encode("utf-8"))
    start = time.monotonic()
    calls = 0
    for i in range(tries):
        if i and time.monotonic() - start >= seconds:
            break
        calls += 1
        params = GenerationParams(
            max_tokens=48, temperature=0.7, seed=(base + 7919 * i) & 0x7FFFFFFF, grammar=gbnf
        )
        candidate = _first_sentence(ctx.worker.generate_text(messages, params).text)
        if phrasing_is_right(candidate, local):
            return candidate, True, calls
    return plain, False, calls


def zone_args(place: str) -> dict[str, Any] | None:
    """The ``tz`` argument for a place named in a question ("Tokyo" -> Asia/Tokyo); None for a place
    with no known zone, so the model answers instead."""
    zone = zone_for_place(place)
    return {"tz": zone} if zone else None


# Fixed phrases: chat shortcuts and the voice grammar (kept short: every phrase in a speech grammar
# competes with the others). The regex catches the other ways to ask in chat, with or without a place.
PHRASES: tuple[str | re.Pattern[str], ...] = (
    "what time is it",
    "what's the time",
    "tell me the time",
    "what day is it",
    "what is the date today",
    "what time is it in {place}",
    re.compile(
        r"(?:what(?:'s| is) the (?:current )?time|what time (?:is it|it is)|tell me the time"
        r"|do you (?:know|have) (?:what time it is|the time)|(?:the )?current time|what(?:'s| is) the date(?: today)?)"
        r"(?: in (?P<place>\w[\w .'/-]{0,40}))?",
        re.IGNORECASE,
    ),
)


@skill("time", phrases=PHRASES, from_phrase=zone_args, remember=False, untrusted_output=False)
def tell_time(
    ctx: SkillContext,
    tz: Annotated[str | None, "IANA time zone (default: the schedule's or the configured zone)"] = None,
    phrase: Annotated[bool, "let the model phrase the sentence (checked against the clock)"] = True,
    tone: Annotated[
        str | None,
        Field(max_length=60),
        "how the sentence should sound ('cheerful', 'like a pirate'); facts unchanged",
    ] = None,
    tries: Annotated[int, Field(ge=1, le=10)] = 3,
    seconds: Annotated[float, Field(ge=0, le=60)] = 6.0,
    grammar: bool = True,
) -> SkillResult:
    """Tell the current local time and date in a friendly sentence.

    The time itself comes from the clock; the model may only phrase it, and its sentence is used only
    when it states exactly the right time.

    Args:
        tries: model calls at most (different seeds); the first sentence that passes the check is used
        seconds: time budget of the phrasing: no new try starts after it (the first always runs)
        grammar: constrain the model's sentence to the facts' numbers (embedded model only)
    """
    now = ctx.clock.now()
    zone = get_zone(tz) if tz else ctx.timezone
    local = now.astimezone(zone) if zone is not None else now
    plain = facts(local)
    text, phrased, calls = plain, False, 0
    if phrase:
        style = clean_text(tone, 60) if tone else None
        text, phrased, calls = phrase_sentence(
            ctx, local, plain, tone=style, tries=tries, seconds=seconds, grammar=grammar
        )
    return SkillResult(
        text,
        title=f"Time: {local:%H:%M}",
        data={
            "local_time": local.isoformat(),
            "utc_time": now.isoformat(),
            "timezone": getattr(local.tzinfo, "key", str(local.tzinfo)),
            "abbreviation": local.tzname(),
            "phrased_by_model": phrased,
            "tries": calls,
        },
    )
