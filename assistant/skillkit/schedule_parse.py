"""Schedules people type ("every weekday at 7:30", "every 15 minutes", "hourly", "30 7 * * 1-5") turned
into a standard 5-field cron expression or an interval, and then into an APScheduler 3 trigger.

Schedules people say that cron cannot hold are APScheduler triggers too, never date arithmetic of ours:
"every 3 days at 8" and "every 2 weeks on friday at 17:00" are interval triggers counted on the wall clock
(``WallClockInterval``: they stay at 8:00 across DST); "on the first Monday of the month at 9" and "on the
last day of the month" are cron triggers with APScheduler's ``1st mon``/``last`` day expressions; and
"every weekday at 8 and weekends at 10" is an ``OrTrigger`` of its parts. Each parsed schedule says in
words what will run (``describe``); the scheduler shows that with the next run time.

The cron shown back to the user is standard crontab (Sunday = 0 or 7). APScheduler 3 numbers weekdays
from Monday = 0, so the day-of-week field is handed to it as names ("mon,tue,...") to avoid that trap.
Anything not understood is a BadRequest that says what is accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from apscheduler.util import localize

from assistant.core.errors import BadRequest
from assistant.skillkit.schedules import StoredSchedule

EXAMPLES = (
    '"every weekday at 7:30", "every day at 8", "every monday and thursday at 18:00", '
    '"every 15 minutes", "every 2 hours", "hourly", "daily at 6pm", "every 3 days at 8", '
    '"on the first monday of the month at 9", "every weekday at 8 and weekends at 10", '
    'or a cron expression like "30 7 * * 1-5"'
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


_DAY_TITLES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_ORDINALS = {"first": "1st", "1st": "1st", "second": "2nd", "2nd": "2nd", "third": "3rd", "3rd": "3rd",
             "fourth": "4th", "4th": "4th", "fifth": "5th", "5th": "5th", "last": "last"}  # fmt: skip
_EVERY_NTH = {"other": 2, "second": 2, "third": 3, "fourth": 4}
_MAX_PARTS = 10
# "every weekday at 8 and weekends at 10", "every day at 9; every sunday at 20": where one schedule may end
_JOIN = re.compile(r"\s*(?:;|,|\band\b|\bplus\b)\s*")
_INTERVAL_AT = re.compile(
    r"^every\s+(\d+|other|second|third|fourth)\s+([a-z]+?)s?(?:\s+on\s+([a-z]+?)s?)?\s+at\s+(.+)$"
)
_MONTHLY = re.compile(
    r"^(?:(?:every|each)\s+)?(?:on\s+)?(?:the\s+)?(.+?)\s+(?:of|in)\s+(?:the|every|each|a)\s+month"
    r"(?:\s+at\s+(.+))?$|^monthly\s+on\s+(?:the\s+)?(.+?)(?:\s+at\s+(.+))?$"
)
_MONTH_ITEM = re.compile(r"^(?:the\s+)?(?:(first|second|third|fourth|fifth|last|[1-5](?:st|nd|rd|th))\s+([a-z]+)"
                         r"|(\d{1,2})(?:st|nd|rd|th)?|(last)(?:\s+day)?)$")  # fmt: skip


@dataclass(frozen=True)
class ParsedSchedule:
    """One parsed schedule: a cron expression, an interval (counted on the wall clock from a time of day
    when ``at`` is set), a monthly rule (``month_days``), or several of these (``parts``: any one fires)."""

    text: str  # what the user typed
    cron: str | None = None  # standard 5-field crontab
    interval_seconds: int | None = None
    at: tuple[int, int] | None = None  # hour, minute: an interval of whole days that keeps this wall time
    on_weekday: int | None = None  # the weekday (Sunday = 0) such an interval starts on
    month_days: str | None = None  # APScheduler day expression of a monthly rule: "1st mon", "last", "1,15"
    hours: tuple[int, ...] = ()  # a monthly rule's hours ...
    minute: int = 0  # ... and minute
    parts: tuple[ParsedSchedule, ...] = ()
    summary: str = ""  # what will run, in words

    @property
    def kind(self) -> str:
        if self.parts:
            return "any"
        if self.month_days:
            return "monthly"
        return "cron" if self.cron else "interval"

    def describe(self) -> str:
        """What will run, in words ("every weekday at 07:30 (cron 30 7 * * 1-5)", "every 3 days at 08:00")."""
        if self.parts:
            return "; or ".join(p.describe() for p in self.parts)
        if self.cron:
            return f"{self.summary} (cron {self.cron})" if self.summary else f"cron {self.cron}"
        if self.summary:
            return self.summary
        return f"every {_human_seconds(self.interval_seconds or 0)}"

    def trigger(self, tz: tzinfo, start: datetime | None = None) -> BaseTrigger:
        """The APScheduler trigger; ``start`` (default now) is where an interval starts counting."""
        if self.parts:
            return OrTrigger([p.trigger(tz, start) for p in self.parts])
        if self.cron:
            return cron_trigger(self.cron, tz)
        if self.month_days:
            hours = ",".join(str(h) for h in self.hours)
            return CronOncePerWallTime(day=self.month_days, hour=hours, minute=self.minute, timezone=tz)
        if self.at:
            # the first run: the next time the wall clock shows that time (on that weekday), by APScheduler
            dow = _DOW_NAMES[self.on_weekday] if self.on_weekday is not None else "*"
            first_rule = CronOncePerWallTime(hour=self.at[0], minute=self.at[1], day_of_week=dow, timezone=tz)
            first = first_rule.get_next_fire_time(None, start or datetime.now(tz))
            assert first is not None  # a daily or weekly rule without an end always has a next time
            return WallClockInterval(tz, self.interval_seconds or 0, first)
        return IntervalTrigger(seconds=self.interval_seconds or 0, timezone=tz, start_date=start)

    def to_dict(self) -> StoredSchedule:
        """What is stored with the job (and shown with the schedule)."""
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
    """Parse a natural schedule or a cron expression; BadRequest when it is neither. Several schedules
    joined by "and", "," or ";" ("every weekday at 8 and weekends at 10") become one that runs at each."""
    if not isinstance(text, str) or not text.strip():
        raise _bad(str(text), "it is empty")
    original = text.strip()
    s = re.sub(r"\s+", " ", original.lower()).strip(" .")
    s = s.removeprefix("cron:").removeprefix("cron ").strip() if s.startswith("cron") else s
    try:
        return _parse_one(s, original)
    except BadRequest as whole:
        parts = _split_parts(s, {})
        if parts is None:
            raise whole from None
        return ParsedSchedule(original, parts=parts)


def _split_parts(
    s: str, memo: dict[str, tuple[ParsedSchedule, ...] | None]
) -> tuple[ParsedSchedule, ...] | None:
    """``s`` as two or more schedules in a row, or None; ``memo`` keeps each tail's answer (linear work)."""
    if s in memo:
        return memo[s]
    memo[s] = None
    for m in _JOIN.finditer(s):
        head, tail = s[: m.start()].strip(), s[m.end() :].strip()
        if not head or not tail:
            continue
        try:
            first = _parse_one(head, head)
        except BadRequest:
            continue
        try:
            rest: tuple[ParsedSchedule, ...] | None = (_parse_one(tail, tail),)
        except BadRequest:
            rest = _split_parts(tail, memo)
        if rest is not None and len(rest) < _MAX_PARTS:
            memo[s] = (first, *rest)
            break
    return memo[s]


def _parse_one(s: str, original: str) -> ParsedSchedule:
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
        _check_interval(seconds, original)
        return ParsedSchedule(original, interval_seconds=seconds)

    m = _MONTHLY.match(s)
    if m:
        return _parse_monthly(m.group(1) or m.group(3), m.group(2) or m.group(4), original)

    m = _INTERVAL_AT.match(s)
    if m:
        return _parse_interval_at(m, original)

    cron, summary = _parse_calendar(s, original)
    return ParsedSchedule(original, cron=cron, summary=summary)


def _check_interval(seconds: int, original: str) -> None:
    if seconds < MIN_INTERVAL_SECONDS:
        raise _bad(original, f"runs more often than every {MIN_INTERVAL_SECONDS} seconds")
    if seconds > MAX_INTERVAL_SECONDS:
        raise _bad(original, f"runs less often than every {_human_seconds(MAX_INTERVAL_SECONDS)}")


def _say_times(minute: int, hours: list[int] | tuple[int, ...]) -> str:
    return "at " + " and ".join(f"{h:02d}:{minute:02d}" for h in hours)


def _day_number(word: str) -> int | None:
    return _DAY_WORDS.get(word, _DAY_WORDS.get(word.rstrip("s")))


def _parse_interval_at(m: re.Match[str], original: str) -> ParsedSchedule:
    """ "every 3 days at 8", "every other day at 9", "every 2 weeks on friday at 17", "every other monday at
    9": whole days on the wall clock, one interval per time of day."""
    count_text, unit, day_text, times_text = m.groups()
    count = (
        int(count_text) if count_text.isdigit() and len(count_text) <= 6 else _EVERY_NTH.get(count_text, 0)
    )
    weekday = None
    if _day_number(unit) is not None:  # "every other monday"
        unit, weekday = "week", _day_number(unit)
    if unit not in ("day", "week") or count < 1:
        raise _bad(original, "say 'every N days' or 'every N weeks' before 'at'")
    if day_text:
        if unit != "week" or weekday is not None or _day_number(day_text) is None:
            raise _bad(original, f"{day_text!r} is not one weekday of 'every N weeks'")
        weekday = _day_number(day_text)
    seconds = count * _UNIT_SECONDS[unit]
    _check_interval(seconds, original)
    minute, hours = _parse_times(times_text, original)
    every = f"every {_human_seconds(seconds)}" if count > 1 else f"every {unit}"
    if weekday is not None:
        every += f" on {_DAY_TITLES[weekday]}"
    parts = tuple(
        ParsedSchedule(
            original,
            interval_seconds=seconds,
            at=(h, minute),
            on_weekday=weekday,
            summary=f"{every} {_say_times(minute, [h])}",
        )  # fmt: skip
        for h in hours
    )
    return parts[0] if len(parts) == 1 else ParsedSchedule(original, parts=parts)


def _parse_monthly(days_text: str, times_text: str | None, original: str) -> ParsedSchedule:
    """ "on the first monday of the month at 9", "the 1st and 15th of every month", "monthly on the last
    friday at 17", "on the last day of the month": APScheduler's day expressions; no time is 00:00."""
    exprs: list[str] = []
    said: list[str] = []
    for item in (p.strip() for p in re.split(r",|\band\b", days_text) if p.strip()):
        m = _MONTH_ITEM.match(item)
        if not m:
            raise _bad(original, f"{item!r} is not a day of the month like 'the first monday' or 'the 15th'")
        nth, day, number, last = m.groups()
        if number:
            if not 1 <= int(number) <= 31:
                raise _bad(original, f"{item!r} is not a day of the month")
            exprs.append(str(int(number)))
            said.append(f"day {int(number)}")
        elif last:
            exprs.append("last")
            said.append("the last day")
        else:
            nth_short = _ORDINALS.get(nth, nth)
            if day == "day":
                exprs.append("last" if nth_short == "last" else nth_short[:-2])
                said.append(f"the {nth} day")
                continue
            number_of_day = _day_number(day)
            if number_of_day is None:
                raise _bad(original, f"{day!r} is not a day")
            exprs.append(f"{nth_short} {_DOW_NAMES[number_of_day]}")
            said.append(f"the {nth} {_DAY_TITLES[number_of_day]}")
    minute, hours = _parse_times(times_text, original) if times_text else (0, [0])
    summary = f"on {' and '.join(said)} of every month {_say_times(minute, hours)}"
    parsed = ParsedSchedule(original, month_days=",".join(exprs), hours=tuple(hours), minute=minute,
                            summary=summary)  # fmt: skip
    try:
        parsed.trigger(UTC)
    except ValueError as exc:
        raise _bad(original, str(exc)) from None
    return parsed


def _parse_calendar(s: str, original: str) -> tuple[str, str]:
    """ "every weekday at 7:30" / "daily at 8" / "at 9 on mondays" / "weekends at 10am" -> cron, in words."""
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
        raise _bad(original, "say 'every N days at 8', or give the days by name")
    minute, hours = _parse_times(times_text, original)
    dow = _parse_days(days_text, original)
    return (
        f"{minute} {','.join(str(h) for h in hours)} * * {dow}",
        f"{_say_days(dow)} {_say_times(minute, hours)}",
    )


def _say_days(dow: str) -> str:
    if dow == "*":
        return "every day"
    if dow == "1-5":
        return "every weekday"
    if dow == "0,6":
        return "every Saturday and Sunday"
    names = [_DAY_TITLES[int(d)] for d in dow.split(",")]
    return "every " + " and ".join(names)


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


class WallClockInterval(IntervalTrigger):
    """An IntervalTrigger counted on the wall clock of ``zone``: "every 3 days at 8" stays at 8:00 when the
    clocks change. APScheduler counts the interval on wall times written as UTC (a clock without DST),
    from ``first``; each run is that wall time in ``zone`` (a time the clocks skip runs an hour later)."""

    def __init__(self, zone: tzinfo, seconds: int, first: datetime) -> None:
        super().__init__(seconds=seconds, start_date=_wall(first, zone).replace(tzinfo=UTC), timezone=UTC)
        self.zone = zone

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        # The first run on the interval's grid after the previous run (which, inside an OrTrigger, may be
        # another part's), else at or after now.
        after = previous_fire_time + timedelta(microseconds=1) if previous_fire_time else now
        nxt = super().get_next_fire_time(None, _wall(after, self.zone).replace(tzinfo=UTC))
        return None if nxt is None else localize(nxt.replace(tzinfo=None), self.zone)

    def __getstate__(self) -> dict[str, Any]:  # stored by the job store: the zone goes with it
        state: dict[str, Any] = super().__getstate__()
        state["zone"] = self.zone
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        self.zone = state.pop("zone")
        super().__setstate__(state)

    def __str__(self) -> str:
        return f"wall-clock interval[{self.interval!s}] in {self.zone}"


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
    try:
        _build_cron(cron, UTC)
    except ValueError as exc:
        raise _bad(original, str(exc)) from None
