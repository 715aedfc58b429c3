"""Reminders, timers and alarms as people say them, turned into exact fire times (or a question).

``parse_request(text, now, zone)`` answers ``Parsed`` (kind, what, first fire time, a recurrence for
assistant.skillkit.schedule_parse, and the notes the confirmation must say: an assumption, "that time has
passed today, so tomorrow"), ``Clarify`` (a question: "9 in the morning or in the evening?"), or None when
the text is not a request to remind, time or wake.

Code does the conversation: the intent, durations ("in half an hour", "in 2h", "for 8 minutes"), times of
day ("at quarter past 7", "tonight at 8", "noon"), day words, recurrence (handed to parse_schedule, whose
APScheduler triggers keep the wall-clock time across DST), typos (close matches to a small vocabulary) and
am/pm. A calendar date ("on March 20", "the 24th of December") goes to parsedatetime: on the phrase set
(benchmarks/bench_reminder_parsers.py) every library tried got whole phrases wrong ("at 9" at 17:20,
"tonight at 8", "quarter past 7", "every Monday at 7" read as 19:00), so none is given a whole phrase.

Rules for an hour without am/pm (1-11): a context word decides ("morning", "tonight"); an alarm is in the
morning; with a day named, 6-11 is the morning and 1-5 the afternoon (said as an assumption); with no day,
the first of the two still ahead today is taken (said as an assumption), and when both have passed the
answer is a question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from assistant.reminders import words
from assistant.reminders.words import ALARM, REMINDER, TIMER, normalise

__all__ = ["ALARM", "REMINDER", "TIMER", "Clarify", "Parsed", "describe_day", "describe_in", "next_fire",
           "normalise", "parse_request", "schedule_text"]  # fmt: skip

@dataclass(frozen=True)
class Parsed:
    """One request understood: ``due`` is the first fire time (aware, UTC); ``schedule`` the recurrence
    (text for assistant.skillkit.schedule_parse) or None; ``notes`` what the answer must say besides the time."""

    kind: str
    what: str
    due: datetime
    schedule: str | None = None
    notes: tuple[str, ...] = ()
    duration_s: int | None = None  # a timer's length
    at_clock: bool = False  # the user named the time of day (set inside quiet hours, it is on purpose)


@dataclass(frozen=True)
class Clarify:
    """A question to ask before anything is set; ``kind`` and the text asked about come back with the answer."""

    question: str
    kind: str = REMINDER


@dataclass
class _When:
    duration: timedelta | None = None
    calendar_days: int = 0  # "in 3 days": wall-clock days
    clock: tuple[int, int] | None = None
    ampm_known: bool = False
    context: str | None = None  # morning / afternoon / evening / tonight / night
    day: date | None = None
    day_named: bool = False
    weekday_today: bool = False
    recur: str | None = None
    spans: list[tuple[int, int]] = field(default_factory=list)


def _find_when(s: str, today: date) -> _When:
    w = _When()
    taken = [False] * len(s)

    def take(m: re.Match[str]) -> None:
        w.spans.append(m.span())
        for i in range(*m.span()):
            taken[i] = True

    def free(m: re.Match[str]) -> bool:
        return not any(taken[m.start() : m.end()])

    for m in words.RECUR.finditer(s):
        w.recur = m.group(0)
        take(m)
        break
    for m in words.DATE.finditer(s):
        if free(m):
            d = words.calendar_date(m.group(0), today)
            if d is not None:
                w.day, w.day_named = d, True
                take(m)
                break
    for m in words.DURATION.finditer(s):
        if free(m) and m.group("dur"):
            before = s[: m.start()].rstrip()
            # "for 6:45" is a time, "for 8 minutes" a duration; "at 5 m" is not
            if before.endswith(("at", "@")):
                continue
            if not m.group("in") and not re.search(r"\btimer\b|^\S+$", s) and not before.endswith("timer"):
                if not re.search(r"\b(?:timer|minute|hour|second)s?\b.*", m.group(0)):
                    continue
            length = words.duration(m.group("dur"))
            if length.total_seconds() <= 0:
                continue
            if length.total_seconds() % 86400 == 0 and length.days and m.group("in") == "in":
                w.calendar_days = length.days
            else:
                w.duration = length
            take(m)
            break
    for m in words.DAYWORD.finditer(s):
        if not free(m):
            continue
        word = m.group(0)
        take(m)
        w.day_named = True
        for part in ("morning", "afternoon", "evening", "night"):
            if word.endswith(part):
                w.context = "tonight" if word.endswith("night") and word.startswith("tomorrow") else part
                if word.startswith(("this", "in the")):
                    w.day_named = False
        if word == "next week":
            w.day = words.next_weekday(today, 0)
        elif word == "tonight":
            w.context, w.day, w.day_named = "tonight", today, False
        elif word.startswith("the day after"):
            w.day = today + timedelta(days=2)
        elif word.startswith("tomorrow"):
            w.day = today + timedelta(days=1)
        elif word == "today" or word.startswith(("this morning", "this afternoon", "this evening", "in the")):
            w.day = w.day or today
            w.day_named = word == "today" and w.day_named
        else:
            name = next(d for d in words.WEEKDAYS if d in word)
            index = words.WEEKDAYS.index(name)
            w.day = words.next_weekday(today, index, include_today=not word.startswith("next"))
            w.weekday_today = w.day == today  # "on Friday" said on a Friday: today, or next week once past
            if word.startswith("next") and w.day - today <= timedelta(days=1):
                w.day += timedelta(days=7)  # "next Saturday" said on Friday is not tomorrow
        break
    for m in words.CLOCK.finditer(s):
        if not free(m):
            continue
        read = words.read_clock(m)
        if read is None:
            continue
        h, mm, known, context = read
        w.clock, w.ampm_known = (h, mm), known
        w.context = context or w.context
        take(m)
        break
    if w.context is None and w.recur is not None:
        w.context = next((c for c in ("morning", "evening", "night") if c in w.recur), None)
    if w.context is None:
        found = re.search(r"\b(?:in the (morning|afternoon|evening)|at (night))\b", s)
        if found:
            w.context = found.group(1) or found.group(2)
            take(found)
    return w


def _what(s: str, w: _When, kind: str) -> str:
    """The rest of the request once the intent and the time words are gone: "take the pasta out"."""
    chars = list(s)
    for a, b in w.spans:
        for i in range(a, b):
            chars[i] = " "
    rest = re.sub(r"\s+", " ", "".join(chars)).strip(" ,.")
    rest = re.sub(r"^(reminder)\s*:", r"\1", rest)
    rest = re.sub(words.REMIND.pattern, "", rest).strip(" ,")
    if kind == ALARM:
        rest = re.sub(words.ALARM_START.pattern, "", rest).strip(" ,")
    rest = re.sub(r"^(?:(?:hey|ok|okay|please|can you|could you|pls)[\s,]+)*", "", rest)
    rest = re.sub(r"^(?:set|start|put on|make|run|begin)\s+(?:an?|the|my|me a)?\s*", "", rest)
    if kind == TIMER:
        rest = re.sub(r"\b(?:an?|the|my)\b|\btimer\b|\bfor\b|\bplease\b", " ", rest)
        return re.sub(r"\s+", " ", rest).strip(" ,")
    rest = re.sub(r"^[:\-]?\s*(?:to|that|about|of|for|me)?\b\s*", "", rest)
    rest = re.sub(r"\s+(?:on|at|for|by|to|and|please)$", "", rest)
    rest = re.sub(r"\s+(?:on|at|by)\s+(?=to\b)", " ", rest)
    rest = re.sub(r"^(?:to|that|about)\s+", "", rest.strip())
    rest = re.sub(r"\bmy\b", "your", rest)
    return rest.strip(" ,.")


def _original_case(what: str, text: str) -> str:
    """``what`` as the user wrote it ("call Anna"), when it can be found in their text."""
    if not what:
        return what
    pattern = r"\s+".join(re.escape(word) for word in what.split(" "))
    m = re.search(pattern, text, re.I)
    return m.group(0) if m else what


def _local(day: date, clock: tuple[int, int], zone: ZoneInfo) -> datetime:
    """The instant the wall clock in ``zone`` shows ``clock`` on ``day`` (a skipped time: the moment of the
    jump; a doubled one: its first occurrence)."""
    from assistant.notify.quiet import local_instant

    return local_instant(day, time(*clock), zone)


def _say(h: int, m: int) -> str:
    return f"{h:02d}:{m:02d}"


def parse_request(text: str, now: datetime, zone: ZoneInfo) -> Parsed | Clarify | None:
    """What ``text`` asks for at ``now`` in ``zone``; None when it is not a reminder, timer or alarm."""
    s = normalise(text)
    kind = words.intent(s)
    if kind is None:
        return None
    local_now = now.astimezone(zone)
    today = local_now.date()
    w = _find_when(s, today)
    what = _original_case(_what(s, w, kind), text)
    if kind == TIMER:
        if w.duration is None and not w.calendar_days:
            return Clarify("How long should the timer run?", TIMER)
        length = w.duration or timedelta(days=w.calendar_days)
        return Parsed(TIMER, what, now + length, duration_s=int(length.total_seconds()))
    if w.duration is not None and w.clock is None and w.recur is None:
        return Parsed(kind, what, now + w.duration)
    if w.calendar_days and w.clock is None and w.recur is None:
        wall = local_now.replace(tzinfo=None) + timedelta(days=w.calendar_days)
        return Parsed(kind, what, _local(wall.date(), (wall.hour, wall.minute), zone))
    if w.calendar_days:
        w.day, w.day_named = today + timedelta(days=w.calendar_days), True
    notes: list[str] = []
    said_clock = w.clock is not None
    if w.clock is None:
        if kind == ALARM:
            return Clarify(
                "What time should I wake you?" if w.day else "What time should the alarm go off?", ALARM
            )
        if w.recur is None and w.day is None and w.context is None:
            if not words.TO_BE_TIMED.search(s):
                return None  # "remind me what we said yesterday": a question for the model, not a reminder
            return Clarify("When should I remind you?", REMINDER)
        if w.recur is not None and _interval_recur(w.recur):
            return _recurring(kind, what, w.recur, None, now, zone, notes)
        hour = words.PART_OF_DAY.get(w.context or "", words.DEFAULT_HOUR)
        w.clock = (hour, 0)
        notes.append(f"you gave no time, so {_say(hour, 0)}")
        w.ampm_known = True
    h, mm = w.clock
    if not w.ampm_known and 1 <= h <= 12:
        resolved = _resolve_ampm(h, mm, kind, w, local_now, notes)
        if isinstance(resolved, Clarify):
            return resolved
        h = resolved
    if w.recur is not None:
        made = _recurring(kind, what, w.recur, (h, mm), now, zone, notes)
        return replace(made, at_clock=said_clock) if isinstance(made, Parsed) else made
    day = w.day or today
    due = _local(day, (h, mm), zone)
    if due <= now and w.weekday_today:
        day = day + timedelta(days=7)
        due = _local(day, (h, mm), zone)
        notes.append(f"{_say(h, mm)} has already passed today, so next {words.DAY_NAMES[day.weekday()]}")
    if due <= now:
        if w.day_named and w.day != today:
            return Clarify(f"{_say(h, mm)} on that day has already passed; when should it be?", kind)
        day = day + timedelta(days=1)
        due = _local(day, (h, mm), zone)
        notes.append(f"{_say(h, mm)} has already passed today, so tomorrow")
    return Parsed(kind, what, due, notes=tuple(notes), at_clock=said_clock)


def _resolve_ampm(
    h: int, mm: int, kind: str, w: _When, local_now: datetime, notes: list[str]
) -> int | Clarify:
    """The 24-hour hour for an hour said without am/pm, or a question."""
    ctx = w.context
    if ctx in ("afternoon", "evening", "tonight", "night"):
        if ctx == "night" and h in (12, 1, 2, 3, 4):  # "at 1 at night"
            return h % 12
        return h % 12 + 12
    if ctx == "morning":
        return h % 12
    if h == 12:
        notes.append("I took 12 as noon")
        return 12
    if kind == ALARM:
        return h
    if w.day_named or w.recur is not None:
        if h >= 6:
            notes.append(f"I took {h} as {_say(h, mm)} in the morning")
            return h
        notes.append(f"I took {h} as {_say(h + 12, mm)} in the afternoon")
        return h + 12
    now_t = (local_now.hour, local_now.minute)
    for hh in (h, h + 12):
        if (hh, mm) > now_t:
            other = "in the evening" if hh < 12 else "in the morning"
            notes.append(f"I took {h} as {_say(hh, mm)}; say {h} {other} if you meant that")
            return hh
    said = f"{h}:{mm:02d}" if mm else str(h)
    return Clarify(f"{said} in the morning or in the evening?", kind)


def _interval_recur(recur: str) -> bool:
    return bool(re.search(r"\b(?:hour|minute|\d+\s+(?:minutes?|hours?))\b", recur)) or recur.endswith(
        ("every two hours", "every three hours")
    )


_RECUR_DAYS = {"daily": "every day", "nightly": "every day", "weekdays": "every weekday", "on weekdays": "every weekday",
               "on work days": "every weekday", "every workday": "every weekday", "every work day": "every weekday",
               "on weekends": "every weekend", "every morning": "every day", "every evening": "every day",
               "every night": "every day"}  # fmt: skip


def schedule_text(recur: str, clock: tuple[int, int] | None) -> str:
    """The recurrence as assistant.skillkit.schedule_parse reads it ("every monday at 07:00")."""
    r = recur.strip()
    r = _RECUR_DAYS.get(r, r)
    m = re.fullmatch(r"on (\w+)days", r)
    if m:
        r = f"every {m.group(1)}day"
    r = r.replace("each ", "every ")
    for word, n in words.NUMBERS.items():
        if " " not in word and len(word) > 2:
            r = re.sub(rf"\bevery {word}\b", f"every {n}", r)
    if clock is None:
        return r
    return f"{r} at {_say(*clock)}"


def _recurring(
    kind: str,
    what: str,
    recur: str,
    clock: tuple[int, int] | None,
    now: datetime,
    zone: ZoneInfo,
    notes: list[str],
) -> Parsed | Clarify:
    from assistant.core.errors import BadRequest

    if clock is None and recur in ("every morning", "every evening", "every night"):
        clock = (words.PART_OF_DAY["morning" if "morning" in recur else "evening"], 0)
    text = schedule_text(recur, clock)
    try:
        due = next_fire(text, zone, now)
    except BadRequest:
        return Clarify(f'I could not work out when {recur!r} is; say it like "every Monday at 7".', kind)
    return Parsed(kind, what, due, schedule=text, notes=tuple(notes))


def next_fire(schedule: str, zone: ZoneInfo, after: datetime, previous: datetime | None = None) -> datetime:
    """The next fire time of a recurrence strictly after ``after`` (``previous``: the run before, which an
    interval counts from). BadRequest when the schedule cannot be read."""
    from assistant.skillkit.schedule_parse import parse_schedule

    parsed = parse_schedule(schedule)
    start = previous or after
    trigger = parsed.trigger(zone, start)
    nxt = trigger.get_next_fire_time(
        previous, after + timedelta(microseconds=1) if previous is None else after
    )
    while nxt is not None and nxt <= after:
        nxt = trigger.get_next_fire_time(nxt, nxt)
    if nxt is None:  # pragma: no cover - every schedule we make has no end
        raise ValueError(f"{schedule!r} never fires again")
    return nxt.astimezone(UTC)


def describe_day(when: datetime, now: datetime, zone: ZoneInfo) -> str:
    """ "today", "tomorrow", "on Tuesday 10 March" for the local day of ``when``."""
    d, today = when.astimezone(zone).date(), now.astimezone(zone).date()
    if d == today:
        return "today"
    if d == today + timedelta(days=1):
        return "tomorrow"
    return f"on {words.DAY_NAMES[d.weekday()]} {d.day} {d.strftime('%B')}"


def describe_in(delta: timedelta) -> str:
    """ "20 minutes", "1 hour 5 minutes", "2 days 3 hours", "45 seconds"."""
    secs = max(0, round(delta.total_seconds()))
    if secs < 60:
        return f"{secs} second{'s' if secs != 1 else ''}"
    mins = (secs + 30) // 60
    days, rem = divmod(mins, 1440)
    hours, minutes = divmod(rem, 60)
    parts = [(days, "day"), (hours, "hour"), (minutes, "minute")]
    shown = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts if n][:2]
    return " ".join(shown)
