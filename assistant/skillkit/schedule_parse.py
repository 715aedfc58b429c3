"""Schedules people type ("every weekday at 7:30", "every 15 minutes", "hourly", "30 7 * * 1-5") turned
into a standard 5-field cron expression or an interval, and then into an APScheduler 3 trigger.

The cron shown back to the user is standard crontab (Sunday = 0 or 7). APScheduler 3 numbers weekdays
from Monday = 0, so the day-of-week field is handed to it as names ("mon,tue,...") to avoid that trap.
Anything not understood is a BadRequest that says what is accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from assistant.core.errors import BadRequest

EXAMPLES = (
    '"every weekday at 7:30", "every day at 8", "every monday and thursday at 18:00", '
    '"every 15 minutes", "every 2 hours", "hourly", "daily at 6pm", or a cron expression like "30 7 * * 1-5"'
)
MIN_INTERVAL_SECONDS = 60
MAX_INTERVAL_SECONDS = 10 * 366 * 86400  # ten years; far beyond that APScheduler's datetimes overflow

# Standard cron weekday numbers (Sunday = 0) and the names APScheduler 3 understands.
_DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_DAY_WORDS = {
    "sunday": 0, "sun": 0, "monday": 1, "mon": 1, "tuesday": 2, "tue": 2, "tues": 2, "wednesday": 3,
    "wed": 3, "thursday": 4, "thu": 4, "thur": 4, "thurs": 4, "friday": 5, "fri": 5, "saturday": 6, "sat": 6,
}  # fmt: skip
_UNIT_SECONDS = {"second": 1, "sec": 1, "s": 1, "minute": 60, "min": 60, "m": 60, "hour": 3600, "hr": 3600,
                 "h": 3600, "day": 86400, "d": 86400, "week": 604800, "w": 604800}  # fmt: skip
_NICKNAMES = {"@hourly": "0 * * * *", "hourly": "0 * * * *", "every hour": "0 * * * *",
              "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "daily": "0 0 * * *",
              "@weekly": "0 0 * * 0", "weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "monthly": "0 0 1 * *",
              "every minute": "* * * * *"}  # fmt: skip

_TIME = re.compile(r"^(?:(noon|midday)|(midnight)|(\d{1,2})(?:[:.h](\d{2}))?\s*(am|pm|a\.m\.|p\.m\.)?)$")
_INTERVAL = re.compile(r"^every\s+(\d+)\s*([a-z]+?)s?$")
_CRON_NUMERIC = re.compile(r"^[\d*/,-]+$")
_CRON_NAMED = re.compile(r"^[\d*/,a-z-]+$")


@dataclass(frozen=True)
class ParsedSchedule:
    text: str  # what the user typed
    cron: str | None = None  # standard 5-field crontab
    interval_seconds: int | None = None

    @property
    def kind(self) -> str:
        return "cron" if self.cron else "interval"

    def describe(self) -> str:
        if self.cron:
            return f"cron {self.cron}"
        return f"every {_human_seconds(self.interval_seconds or 0)}"

    def trigger(self, tz: tzinfo, start: datetime | None = None) -> CronTrigger | IntervalTrigger:
        if self.cron:
            return cron_trigger(self.cron, tz)
        return IntervalTrigger(seconds=self.interval_seconds or 0, timezone=tz, start_date=start)

    def to_dict(self) -> dict[str, Any]:
        return {"schedule": self.text, "kind": self.kind, "cron": self.cron,
                "interval_seconds": self.interval_seconds, "description": self.describe()}  # fmt: skip


def _human_seconds(seconds: int) -> str:
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} seconds"


def _bad(text: str, why: str = "") -> BadRequest:
    reason = f" ({why})" if why else ""
    return BadRequest(f"cannot understand the schedule {text!r}{reason}; try {EXAMPLES}", code="bad_schedule")


def parse_schedule(text: str) -> ParsedSchedule:
    """Parse a natural schedule or a cron expression; BadRequest when it is neither."""
    if not isinstance(text, str) or not text.strip():
        raise _bad(str(text), "it is empty")
    original = text.strip()
    s = re.sub(r"\s+", " ", original.lower()).strip(" .")
    s = s.removeprefix("cron:").removeprefix("cron ").strip() if s.startswith("cron") else s

    if s in _NICKNAMES:
        return ParsedSchedule(original, cron=_NICKNAMES[s])

    fields = s.split(" ")
    if (
        len(fields) == 5
        and all(_CRON_NUMERIC.match(f) for f in fields[:3])
        and all(_CRON_NAMED.match(f) for f in fields[3:])
    ):
        cron = " ".join(fields)
        _validate_cron(cron, original)
        return ParsedSchedule(original, cron=cron)

    m = _INTERVAL.match(s)
    if m:
        digits, unit = m.group(1), m.group(2)
        if unit not in _UNIT_SECONDS:
            raise _bad(original, f"unknown unit {unit!r}")
        seconds = int(digits) * _UNIT_SECONDS[unit] if len(digits) <= 12 else MAX_INTERVAL_SECONDS + 1
        if seconds < MIN_INTERVAL_SECONDS:
            raise _bad(original, f"runs more often than every {MIN_INTERVAL_SECONDS} seconds")
        if seconds > MAX_INTERVAL_SECONDS:
            raise _bad(original, f"runs less often than every {_human_seconds(MAX_INTERVAL_SECONDS)}")
        return ParsedSchedule(original, interval_seconds=seconds)

    return ParsedSchedule(original, cron=_parse_calendar(s, original))


def _parse_calendar(s: str, original: str) -> str:
    """ "every weekday at 7:30" / "daily at 8" / "at 9 on mondays" / "weekends at 10am" -> cron."""
    at_parts = re.split(r"\bat\b", s)
    if len(at_parts) != 2:
        raise _bad(original, "say when, e.g. 'at 7:30'" if len(at_parts) == 1 else "more than one 'at'")
    days_text, times_text = at_parts[0].strip(), at_parts[1].strip()
    if days_text and not _has_day_words(days_text):
        raise _bad(original, f"{days_text!r} is not a set of days")
    # the days may also follow the time: "at 9 on weekdays", "at 9 every monday"
    tm = re.match(r"^(.*?)(?:\s+(?:on|every|each)\s+(.*))?$", times_text)
    assert tm is not None
    times_text = tm.group(1)
    if tm.group(2):
        if days_text:
            raise _bad(original, "the days are given twice")
        days_text = tm.group(2)
    if not times_text:
        raise _bad(original, "no time after 'at'")
    if re.search(r"\d", days_text):
        raise _bad(original, "'every N days' is not supported with a time; use a cron expression")
    minute, hours = _parse_times(times_text, original)
    dow = _parse_days(days_text, original)
    return f"{minute} {','.join(str(h) for h in hours)} * * {dow}"


def _has_day_words(text: str) -> bool:
    return bool(
        re.search(r"\b(every|each|daily|day|days|weekday|weekdays|weekend|weekends|on)\b", text)
    ) or any(w.rstrip("s") in _DAY_WORDS or w in _DAY_WORDS for w in re.findall(r"[a-z]+", text))


def _parse_times(text: str, original: str) -> tuple[int, list[int]]:
    parts = [p.strip() for p in re.split(r",|\band\b", text) if p.strip()]
    if not parts:
        raise _bad(original, "no time")
    minutes: set[int] = set()
    hours: list[int] = []
    for part in parts:
        m = _TIME.match(part)
        if not m:
            raise _bad(original, f"{part!r} is not a time like 7:30, 18:00 or 6pm")
        if m.group(1):
            hour, minute = 12, 0
        elif m.group(2):
            hour, minute = 0, 0
        else:
            hour, minute = int(m.group(3)), int(m.group(4) or 0)
            suffix = (m.group(5) or "").replace(".", "")
            if suffix:
                if not 1 <= hour <= 12:
                    raise _bad(original, f"{part!r}: hour must be 1-12 with am/pm")
                hour = hour % 12 + (12 if suffix == "pm" else 0)
        if not (0 <= hour <= 23 and 0 <= minute <= 59):
            raise _bad(original, f"{part!r} is not a time of day")
        minutes.add(minute)
        hours.append(hour)
    if len(minutes) != 1:
        raise _bad(original, "several times need the same minute (use two schedules)")
    return minutes.pop(), sorted(set(hours))


def _parse_days(text: str, original: str) -> str:
    """Day words -> the cron day-of-week field ("*", "1-5", "0,6", "1,3")."""
    words = [w for w in re.findall(r"[a-z]+", text) if w not in ("every", "each", "on", "and", "the")]
    if not words or words in (["day"], ["days"], ["daily"]):
        return "*"
    days: set[int] = set()
    for w in words:
        if w in ("weekday", "weekdays"):
            days |= {1, 2, 3, 4, 5}
        elif w in ("weekend", "weekends"):
            days |= {0, 6}
        elif w in _DAY_WORDS or w.rstrip("s") in _DAY_WORDS:
            days.add(_DAY_WORDS.get(w, _DAY_WORDS.get(w.rstrip("s"), -1)))
        else:
            raise _bad(original, f"{w!r} is not a day")
    if days == set(range(7)):
        return "*"
    if days == {1, 2, 3, 4, 5}:
        return "1-5"
    return ",".join(str(d) for d in sorted(days))


# -- standard cron -> APScheduler 3 -------------------------------------------------------------------


def _dow_values(field: str) -> set[int]:
    """Expand a standard cron day-of-week field to Sunday=0 numbers."""
    result: set[int] = set()

    def value(token: str) -> int:
        if token.isdigit() and 0 <= int(token) <= 7:
            return int(token) % 7
        if token[:3] in _DOW_NAMES:
            return _DOW_NAMES.index(token[:3])
        raise ValueError(f"day of week {token!r} is not 0-7 or a day name")

    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise ValueError(f"bad step in {part!r}")
        if base == "*":
            lo, hi = 0, 6
        elif "-" in base:
            a, b = base.split("-", 1)
            lo, hi = value(a), value(b)
            if b.isdigit() and int(b) == 7:
                hi = 7  # "5-7" means Friday to Sunday
            if hi < lo:
                raise ValueError(f"day range {base!r} runs backwards")
        else:
            lo = hi = value(base)
            if step:
                hi = 6
        result |= {d % 7 for d in range(lo, hi + 1, step or 1)}
    return result


class CronOncePerWallTime(CronTrigger):
    """A CronTrigger that fires once at a wall-clock time that happens twice when the clocks go back
    (02:30 on the night DST ends), as cron does. A time skipped when the clocks go forward (02:30 on
    the night DST starts) still fires that day, once, shifted by the size of the gap (03:30)."""

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        nxt = super().get_next_fire_time(previous_fire_time, now)
        while (
            nxt is not None
            and previous_fire_time is not None
            and _wall(nxt, self.timezone) == _wall(previous_fire_time, self.timezone)
        ):
            nxt = super().get_next_fire_time(nxt, nxt)  # the next one strictly after it
        return nxt


def _wall(when: datetime, tz: tzinfo) -> datetime:
    return when.astimezone(tz).replace(tzinfo=None, fold=0)


def _build_cron(cron: str, tz: tzinfo) -> CronTrigger:
    """A trigger for a standard cron expression; ValueError saying what is wrong."""
    minute, hour, day, month, dow = cron.split(" ")
    aps_dow = "*"
    if dow != "*":
        days = _dow_values(dow)
        if day != "*" and days != set(range(7)):
            raise ValueError("restricting both day of month and day of week is not supported")
        ordered = [d for d in (1, 2, 3, 4, 5, 6, 0) if d in days]
        aps_dow = ",".join(_DOW_NAMES[d] for d in ordered) if len(ordered) < 7 else "*"
    return CronOncePerWallTime(
        minute=minute, hour=hour, day=day, month=month, day_of_week=aps_dow, timezone=tz
    )


def cron_trigger(cron: str, tz: tzinfo) -> CronTrigger:
    try:
        return _build_cron(cron, tz)
    except ValueError as exc:
        raise _bad(cron, str(exc)) from None


def _validate_cron(cron: str, original: str) -> None:
    from datetime import UTC

    try:
        _build_cron(cron, UTC)
    except ValueError as exc:
        raise _bad(original, str(exc)) from None
