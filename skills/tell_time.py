"""`time`: the current local time and date. The clock gives the facts; the model may only phrase them,
and its sentence is used only when it states exactly the right time (and no wrong date)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from assistant.core.localtime import get_zone, zone_for_place
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
) -> SkillResult:
    """Tell the current local time and date in a friendly sentence.

    The time itself comes from the clock; the model may only phrase it, and its sentence is used only
    when it states exactly the right time.
    """
    now = ctx.clock.now()
    zone = get_zone(tz) if tz else ctx.timezone
    local = now.astimezone(zone) if zone is not None else now
    plain = facts(local)
    text, phrased = plain, False
    if phrase and ctx.worker is not None:
        messages = [
            ChatMessage(
                "system",
                "Rewrite the facts as one short, friendly sentence. Keep the time exactly as written "
                "and do not add any other facts.",
            ),
            ChatMessage("user", f"Facts: {plain}\nOne friendly sentence:"),
        ]
        completion = ctx.worker.generate_text(messages, GenerationParams(max_tokens=40, temperature=0.7))
        candidate = _first_sentence(completion.text)
        if phrasing_is_right(candidate, local):
            text, phrased = candidate, True
    return SkillResult(
        text,
        title=f"Time: {local:%H:%M}",
        data={
            "local_time": local.isoformat(),
            "utc_time": now.isoformat(),
            "timezone": getattr(local.tzinfo, "key", str(local.tzinfo)),
            "abbreviation": local.tzname(),
            "phrased_by_model": phrased,
        },
    )
