"""`when`: relative dates and time sums computed from the injected clock in the user's zone, never guessed by
the model.

It answers only questions it parses exactly: "what day will it be in 3 days", "what is the date next
Monday", "how many days until Friday", "which month comes after March", "how many days in February 2028",
"what day of the week is 20 March", "what time will it be in 2 hours", "what time is 45 minutes after 2:30
pm", "how long is it from 14:00 to 17:30", "what is 9 pm in 24-hour time". Anything else: :func:`parse`
returns None and the model answers. The current time itself stays with the ``time`` skill."""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from assistant.skillkit.api import SkillContext, SkillResult, skill

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")  # fmt: skip
_SHORT_MONTHS = {m[:3]: i for i, m in enumerate(MONTHS, 1)} | {"sept": 9}
_MONTH = r"(?P<month>" + "|".join(MONTHS) + r"|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)"
_WEEKDAY = r"(?P<wd>" + "|".join(WEEKDAYS) + r")"
_COUNT_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "twenty": 20, "thirty": 30,
                "forty": 40, "fifty": 50, "a couple of": 2, "a few": 3}  # fmt: skip
_N = r"(?P<n>\d{1,4}|" + "|".join(sorted(_COUNT_WORDS, key=len, reverse=True)) + r")"
_CLOCK_RE = (
    r"(?:\d{1,2}(?:[:.]\d{2})? ?(?:a\.?m\.?|p\.?m\.?)|\d{1,2}[:.h]\d{2}|noon|midday|midnight"
    r"|\d{1,2} o'?clock(?: in the (?:morning|afternoon|evening))?)"
)
Answer = Callable[[datetime], str]


def _count(text: str) -> int:
    text = text.strip()
    return int(text) if text.isdigit() else _COUNT_WORDS[text]


def _month(text: str) -> int:
    text = text.lower()
    return (
        MONTHS.index(text) + 1 if text in MONTHS else _SHORT_MONTHS[text[:4] if text == "sept" else text[:3]]
    )


def day_text(d: date) -> str:
    return f"{WEEKDAYS[d.weekday()].capitalize()}, {d.day} {MONTHS[d.month - 1].capitalize()} {d.year}"


def clock_text(hour: int, minute: int) -> str:
    return f"{hour:02d}:{minute:02d} ({hour % 12 or 12}:{minute:02d} {'AM' if hour < 12 else 'PM'})"


def parse_clock(text: str) -> tuple[int, int] | None:
    """'2:30 pm' -> (14, 30), '14:00' -> (14, 0), 'noon' -> (12, 0), '7 o'clock in the evening' -> (19, 0)."""
    t = (
        text.strip().lower().replace(".", ":")
        if re.fullmatch(r"\d{1,2}\.\d{2}", text.strip())
        else text.lower()
    )
    t = t.replace("a.m.", "am").replace("p.m.", "pm").replace("a.m", "am").replace("p.m", "pm").strip()
    if t in ("noon", "midday"):
        return 12, 0
    if t == "midnight":
        return 0, 0
    m = re.fullmatch(r"(\d{1,2})(?:[:h](\d{2}))? ?(am|pm)", t)
    if m:
        hour, minute = int(m[1]), int(m[2] or 0)
        if not 1 <= hour <= 12 or minute > 59:
            return None
        return hour % 12 + (12 if m[3] == "pm" else 0), minute
    m = re.fullmatch(r"(\d{1,2})[:h](\d{2})", t)
    if m:
        hour, minute = int(m[1]), int(m[2])
        return (hour, minute) if hour <= 23 and minute <= 59 else None
    m = re.fullmatch(r"(\d{1,2}) o'?clock(?: in the (morning|afternoon|evening))?", t)
    if m and 1 <= int(m[1]) <= 12:
        hour = int(m[1]) % 12 + (12 if m[2] in ("afternoon", "evening") else 0)
        return hour, 0
    return None


_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}


def _span(n: str, unit: str) -> timedelta:
    unit = {
        "min": "minute",
        "mins": "minute",
        "hr": "hour",
        "hrs": "hour",
        "sec": "second",
        "secs": "second",
    }.get(unit, unit).rstrip("s")
    return timedelta(seconds=_count(n) * _UNIT_SECONDS[unit])


_SPAN = _N + r" (?P<unit>seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?)"
_SPAN2 = _SPAN.replace("?P<n>", "?P<n2>").replace("?P<unit>", "?P<unit2>")
_SPANS = _SPAN + r"(?: and " + _SPAN2 + r")?"


def _spans(m: re.Match[str]) -> timedelta:
    total = _span(m["n"], m["unit"])
    if m.groupdict().get("n2"):
        total += _span(m["n2"], m["unit2"])
    return total


def _duration_text(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    hours, rest = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if rest or not hours:
        parts.append(f"{rest} minute{'s' if rest != 1 else ''}")
    text = " and ".join(parts)
    if hours and rest:
        text += f" ({minutes} minutes)"
    return text


def _relative_day(word: str, today: date) -> tuple[date, str] | None:
    """'today', 'tomorrow', 'yesterday', 'the day after tomorrow', 'in 3 days', '3 days ago', 'next monday',
    'on friday', 'this saturday', 'last tuesday', '3 weeks from now' -> (the day, how to say it)."""
    w = word.strip()
    fixed = {
        "today": 0,
        "tomorrow": 1,
        "yesterday": -1,
        "the day after tomorrow": 2,
        "the day before yesterday": -2,
    }
    if w in fixed:
        return today + timedelta(days=fixed[w]), w.capitalize()
    m = re.fullmatch(r"(?:in )?" + _N + r" (?P<unit>days?|weeks?)(?: from (?:now|today))?", w)
    if m and (w.startswith("in ") or "from" in w):
        days = _count(m["n"]) * (7 if m["unit"].startswith("week") else 1)
        return today + timedelta(days=days), f"In {m['n']} {m['unit']}"
    m = re.fullmatch(_N + r" (?P<unit>days?|weeks?) ago", w)
    if m:
        days = _count(m["n"]) * (7 if m["unit"].startswith("week") else 1)
        return today - timedelta(days=days), f"{m['n'].capitalize()} {m['unit']} ago"
    m = re.fullmatch(r"(?:(?P<which>next|this|coming|this coming|on|last|previous) )?" + _WEEKDAY, w)
    if m:
        target = WEEKDAYS.index(m["wd"])
        which = m["which"] or ""
        if which in ("last", "previous"):
            back = (today.weekday() - target) % 7 or 7
            return today - timedelta(days=back), f"Last {m['wd'].capitalize()}"
        ahead = (target - today.weekday()) % 7 or 7
        return today + timedelta(days=ahead), f"{(which or 'on').capitalize()} {m['wd'].capitalize()}"
    m = re.fullmatch(r"(?:next|in a) week", w)
    if m:
        return today + timedelta(days=7), w.capitalize()
    return None


_REL = (
    r"(?P<rel>today|tomorrow|yesterday|the day (?:after tomorrow|before yesterday)|(?:in )?"
    + _N.replace("?P<n>", "?:")
    + r" (?:days?|weeks?)(?: from (?:now|today)| ago)?|(?:(?:next|this|coming|this coming|on|last|previous) )?(?:"
    + "|".join(WEEKDAYS)
    + r")|next week|in a week)"
)


def _calendar_date(text: str, today: date) -> date | None:
    """'20 march', 'march 20th', 'the 20th of march 2027' (this year when no year is given)."""
    m = re.fullmatch(
        r"(?:the )?(?P<d>\d{1,2})(?:st|nd|rd|th)?(?: of)? " + _MONTH + r"(?:,? (?P<y>\d{4}))?(?: this year)?",
        text,
    ) or re.fullmatch(
        _MONTH + r" (?:the )?(?P<d>\d{1,2})(?:st|nd|rd|th)?(?:,? (?P<y>\d{4}))?(?: this year)?", text
    )
    if not m:
        return None
    try:
        return date(int(m["y"]) if m["y"] else today.year, _month(m["month"]), int(m["d"]))
    except ValueError:
        return None


def parse(text: str) -> Answer | None:
    """A function of the local time that answers ``text``, or None when the question is not one this
    skill is sure of."""
    q = text.strip().lower().replace("\u2019", "'")
    q = re.sub(r"[?!]+$|\.$", "", q).strip()
    q = re.sub(r"\s+", " ", q)
    q = re.sub(r"^(?:(?:please|ok|so|and|hey),? )+", "", q)
    if not q or len(q) > 160:
        return None
    for rule in RULES:
        answer = rule(q)
        if answer is not None:
            return answer
    return None


# ---------------------------------------------------------------- rules: each returns an Answer or None


def _weekday_of(q: str) -> Answer | None:
    m = (
        re.fullmatch(r"what (?:day(?: of the week)?|weekday) (?:is|was|will)(?: it)?(?: be)? " + _REL, q)
        or re.fullmatch(
            r"what (?:day(?: of the week)?|weekday) (?:will it be|was it|is it|it will be|is) " + _REL, q
        )
        or re.fullmatch(
            r"(?:which|what) (?:day(?: of the week)?|weekday) (?:will )?" + _REL + r" (?:be|is going to be)",
            q,
        )
    )
    if not m:
        return None
    rel = m["rel"]

    def answer(local: datetime) -> str:
        found = _relative_day(rel, local.date())
        assert found is not None
        day, said = found
        verb = "was" if day < local.date() else ("is" if day == local.date() else "will be")
        return f"{said} it {verb} {WEEKDAYS[day.weekday()].capitalize()}, {day.day} {MONTHS[day.month - 1].capitalize()}."

    return answer if _relative_day(rel, date(2026, 1, 1)) is not None else None


def _date_of(q: str) -> Answer | None:
    m = (
        re.fullmatch(r"what(?:'s| is| was| will be) (?:the )?date (?:of |on )?" + _REL, q)
        or re.fullmatch(
            r"what(?:'s| is| was| will be) " + _REL.replace("(?P<rel>", "(?P<rel>") + r"'s date", q
        )
        or re.fullmatch(r"what (?:date|day) (?:is|was|will it be|will be|is it) " + _REL, q)
        or re.fullmatch(r"what will (?:the )?date be " + _REL, q)
        or re.fullmatch(r"what (?:is|was) the date " + _REL, q)
        or re.fullmatch(r"(?:what|which) date (?:is|was|will be|falls on) " + _REL, q)
        or re.fullmatch(r"(?:the )?date " + _REL, q)
        or re.fullmatch(r"what(?:'s| is) the date " + _REL, q)
    )
    if not m or m["rel"] in ("today",) and "date" not in q:
        return None
    rel = m["rel"]
    if _relative_day(rel, date(2026, 1, 1)) is None:
        return None

    def answer(local: datetime) -> str:
        found = _relative_day(rel, local.date())
        assert found is not None
        day, said = found
        if said.startswith("In "):
            return f"{said} it will be {day_text(day)}."
        return f"{said} {'was' if day < local.date() else 'is'} {day_text(day)}."

    return answer


def _days_until(q: str) -> Answer | None:
    m = re.fullmatch(
        r"how many (?:more )?(?P<unit>days|weeks|sleeps) (?:is it |are there |are left |left |remain |remaining )?"
        r"(?:until|till|til|to|before|'til) (?:next |this |the next |this coming )?(?P<what>.+?)(?: from (?:now|today))?",
        q,
    ) or re.fullmatch(r"how (?:long|many days) (?:is it )?(?:until|till|to) (?:next |this )?(?P<what>.+)", q)
    if not m:
        return None
    what = m["what"]
    unit = m.groupdict().get("unit") or "days"
    if unit == "weeks":
        return None
    if what in WEEKDAYS:
        target = WEEKDAYS.index(what)

        def to_weekday(local: datetime) -> str:
            today = local.date()
            ahead = (target - today.weekday()) % 7 or 7
            day = today + timedelta(days=ahead)
            return f"{ahead} day{'s' if ahead != 1 else ''} until {day_text(day)}."

        return to_weekday
    if _calendar_date(what, date(2028, 1, 1)) is None:
        named = {"christmas": "25 december", "christmas day": "25 december", "new year": "1 january",
                 "new year's day": "1 january", "new year's eve": "31 december", "halloween": "31 october",
                 "valentine's day": "14 february"}  # fmt: skip
        if what not in named:
            return None
        what = named[what]

    def to_date(local: datetime) -> str:
        today = local.date()
        day = _calendar_date(what, today)
        assert day is not None
        if day < today and not re.search(r"\d{4}", what):
            day = _calendar_date(f"{what} {today.year + 1}", today) or day
        days = (day - today).days
        if days < 0:
            return f"{day_text(day)} was {-days} days ago."
        return f"{days} day{'s' if days != 1 else ''} until {day_text(day)}."

    return to_date


def _weekday_of_date(q: str) -> Answer | None:
    m = re.fullmatch(
        r"(?:what|which) day(?: of the week)? (?:is|was|will be|falls on|does) (?P<d>.+?)(?: (?:fall on|be|this year))?",
        q,
    ) or re.fullmatch(r"what weekday (?:is|was|will be) (?P<d>.+)", q)
    if not m:
        return None
    text = m["d"]
    if _calendar_date(text, date(2028, 1, 1)) is None:
        return None

    def answer(local: datetime) -> str:
        day = _calendar_date(text, local.date())
        assert day is not None
        verb = "was" if day < local.date() else ("is" if day == local.date() else "will be")
        return f"{day.day} {MONTHS[day.month - 1].capitalize()} {day.year} {verb} a {WEEKDAYS[day.weekday()].capitalize()}."

    return answer


def _neighbour(q: str) -> Answer | None:
    m = re.fullmatch(
        r"(?:what|which) (?P<kind>month|day(?: of the week)?) (?:comes|is|falls) (?P<dir>after|before) (?P<x>\w+)"
        r"|what(?:'s| is) the (?P<kind2>month|day) (?P<dir2>after|before) (?P<x2>\w+)"
        r"|what (?P<kind3>month|day) (?:follows|precedes) (?P<x3>\w+)",
        q,
    )
    if not m:
        return None
    kind = (m["kind"] or m["kind2"] or m["kind3"]).split()[0]
    word = m["x"] or m["x2"] or m["x3"]
    direction = m["dir"] or m["dir2"] or ("after" if "follows" in q else "before")
    names = MONTHS if kind == "month" else WEEKDAYS
    if word not in names:
        return None
    i = names.index(word)
    other = names[(i + (1 if direction == "after" else -1)) % len(names)]
    text = f"{other.capitalize()} comes {direction} {word.capitalize()}."
    return lambda local: text


def _month_length(q: str) -> Answer | None:
    m = re.fullmatch(
        r"how many days (?:are there |are |is there )?in " + _MONTH + r"(?: (?P<y>\d{4}))?"
        r"|how many days (?:does|has) "
        + _MONTH.replace("?P<month>", "?P<month2>")
        + r"(?: (?P<y2>\d{4}))? (?:have|got)",
        q,
    )
    if not m:
        return None
    month = _month(m["month"] or m["month2"])
    year_text = m["y"] or m["y2"]

    def answer(local: datetime) -> str:
        year = int(year_text) if year_text else local.year
        days = calendar.monthrange(year, month)[1]
        return f"{MONTHS[month - 1].capitalize()} {year} has {days} days."

    return answer


def _current(q: str) -> Answer | None:
    if re.fullmatch(r"what (?:month|month of the year) (?:is it|is it now|are we in|is this)", q):
        return lambda local: f"It is {MONTHS[local.month - 1].capitalize()} {local.year}."
    if re.fullmatch(r"what year (?:is it|is it now|are we in|is this)", q):
        return lambda local: f"It is {local.year}."
    if re.fullmatch(r"what (?:was|is) last year|what year was (?:it )?last year", q):
        return lambda local: f"Last year was {local.year - 1}."
    if re.fullmatch(r"what (?:is|will be) next year|what year (?:is|will it be|will be) next year", q):
        return lambda local: f"Next year is {local.year + 1}."
    if re.fullmatch(
        r"what day(?: of the week)? (?:is it|is today|is it today)(?: today)?|what weekday is (?:it|today)", q
    ):
        return lambda local: f"Today is {day_text(local.date())}."
    return None


def _time_in(q: str) -> Answer | None:
    m = re.fullmatch(
        r"(?:if it(?:'s| is) (?P<start>"
        + _CLOCK_RE
        + r")(?: now)?,? )?what time (?:will it be|is it going to be|"
        r"will it be in|would it be|is it) (?:in |after )?" + _SPANS + r"(?: from now| later| time)?",
        q,
    ) or re.fullmatch(
        r"(?:if it(?:'s| is) (?P<start>"
        + _CLOCK_RE
        + r")(?: now)?,? )?what time (?:was it|was it) "
        + _SPANS
        + r" ago",
        q,
    )
    if not m:
        return None
    delta = _spans(m)
    if " ago" in q:
        delta = -delta
    start = parse_clock(m["start"]) if m["start"] else None
    if m["start"] and start is None:
        return None

    def answer(local: datetime) -> str:
        if start is None:
            then = local + delta
            when = f"{'in ' if delta >= timedelta(0) else ''}{_duration_text(abs(delta))}{' ago' if delta < timedelta(0) else ''}"
            day = "" if then.date() == local.date() else f" on {day_text(then.date())}"
            return f"{when[0].upper()}{when[1:]} it {'was' if delta < timedelta(0) else 'will be'} {clock_text(then.hour, then.minute)}{day}."
        base = local.replace(hour=start[0], minute=start[1], second=0, microsecond=0)
        then = base + delta
        return f"{_duration_text(abs(delta))} {'after' if delta >= timedelta(0) else 'before'} {clock_text(*start)} is {clock_text(then.hour, then.minute)}."

    return answer


def _time_plus(q: str) -> Answer | None:
    m = re.fullmatch(
        r"(?:what time is |what's |what is |when is )?"
        + _SPANS
        + r" (?P<dir>after|before|past|from|later than|earlier than) (?P<start>"
        + _CLOCK_RE
        + r")",
        q,
    ) or re.fullmatch(
        r"(?:what(?:'s| is) |what time is )?(?P<start>" + _CLOCK_RE + r") (?P<dir>plus|\+|minus|-) " + _SPANS,
        q,
    )
    if not m:
        return None
    start = parse_clock(m["start"])
    if start is None:
        return None
    delta = _spans(m)
    back = m["dir"] in ("before", "minus", "-", "earlier than")
    text_start = clock_text(*start)

    def answer(local: datetime) -> str:
        base = datetime(2000, 1, 1, start[0], start[1])
        then = base - delta if back else base + delta
        return f"{_duration_text(delta)} {'before' if back else 'after'} {text_start} is {clock_text(then.hour, then.minute)}."

    return answer


def _clock_span(m: re.Match[str] | None) -> Answer | None:
    """The time from clock time ``a`` to clock time ``b`` of a match (past midnight when ``b`` is earlier)."""
    if not m:
        return None
    a, b = parse_clock(m["a"]), parse_clock(m["b"])
    if a is None or b is None:
        return None
    minutes = (b[0] * 60 + b[1] - a[0] * 60 - a[1]) % (24 * 60)
    text = f"From {clock_text(*a)} to {clock_text(*b)} is {_duration_text(timedelta(minutes=minutes))}."
    return lambda local: text


def _between(q: str) -> Answer | None:
    m = re.fullmatch(
        r"(?:how long is it|how long|how much time is there|how many (?:hours|minutes)(?: are there)?|what is the time|what's the time) "
        r"(?:is it )?(?:from|between) (?P<a>"
        + _CLOCK_RE
        + r") (?:to|and|until|till) (?P<b>"
        + _CLOCK_RE
        + r")",
        q,
    )
    return _clock_span(m)


def _convert_clock(q: str) -> Answer | None:
    m = re.fullmatch(
        r"(?:what(?:'s| is) |convert )?(?P<t>"
        + _CLOCK_RE
        + r") (?:in|to|as|on the) (?:the )?(?:(?P<h>24|12)[- ]?h(?:ou)?r?|"
        r"(?P<mil>military)|(?P<h2>24|12) hour clock)(?: (?:time|format|clock|notation))?",
        q,
    )
    if not m:
        return None
    t = parse_clock(m["t"])
    if t is None:
        return None
    want = m["h"] or m["h2"] or "24"
    hour, minute = t
    if want == "24":
        text = f"{m['t']} is {hour:02d}:{minute:02d} in 24-hour time."
    else:
        text = f"{m['t']} is {hour % 12 or 12}:{minute:02d} {'AM' if hour < 12 else 'PM'}."
    return lambda local: text


def _lasts(q: str) -> Answer | None:
    """'the film starts at 7:30 pm and lasts 2 hours, when does it end'; 'I go to bed at 11 pm and wake up
    at 7 am, how many hours did I sleep'."""
    m = re.fullmatch(
        r"(?:if )?(?:an? |the |my )?[\w' ]{1,40}? (?:starts|begins|leaves|departs|opens) at (?P<start>"
        + _CLOCK_RE
        + r") and (?:lasts|takes|runs for|runs|is) "
        + _SPANS
        + r"[,.]? (?:when|what time) (?:does|will) (?:it|the \w+) (?:end|finish|arrive|be over|get in|close)",
        q,
    )
    if m:
        start = parse_clock(m["start"])
        if start is None:
            return None
        delta = _spans(m)
        then = datetime(2000, 1, 1, start[0], start[1]) + delta
        text = f"It ends at {clock_text(then.hour, then.minute)}: {_duration_text(delta)} after {clock_text(*start)}."
        return lambda local: text
    m = re.fullmatch(
        r"(?:if )?i (?:go to bed|went to bed|go to sleep|went to sleep|fall asleep|fell asleep|sleep) at (?P<a>"
        + _CLOCK_RE
        + r") and (?:wake up|woke up|get up|got up|wake|woke) at (?P<b>"
        + _CLOCK_RE
        + r")[,.]? how (?:many hours|long) (?:did i sleep|do i sleep|will i sleep|is that|of sleep (?:is that|do i get|did i get))",
        q,
    )
    return _clock_span(m)


RULES: tuple[Callable[[str], Answer | None], ...] = (
    _current,
    _neighbour,
    _month_length,
    _weekday_of,
    _date_of,
    _days_until,
    _weekday_of_date,
    _time_in,
    _time_plus,
    _between,
    _convert_clock,
    _lasts,
)


def when_args(question: str) -> dict[str, Any] | None:
    """``from_phrase``: the arguments when ``question`` is a date or time sum this skill is sure of."""
    return {"question": question} if parse(question) is not None else None


# Any short line may be a date question; when_args decides (None: the next skill or the model answers).
PHRASES: tuple[str | re.Pattern[str], ...] = (re.compile(r"(?P<question>[^\n]{1,160})"),)


@skill("when", phrases=PHRASES, from_phrase=when_args, remember=False, untrusted_output=False)
def when(
    ctx: SkillContext,
    question: Annotated[
        str, "a date or time question: in 3 days, next monday, 45 minutes after 2:30 pm"
    ] = "",
) -> SkillResult:
    """Work out relative dates and time sums from the clock in the user's zone (never the model).

    Weekdays and dates some days away ("in 3 days", "next Monday", "2 days ago"), days until a weekday
    or date, the month or day after another, days in a month, the weekday of a date, the time some hours
    from now or after a given time, the time between two times, 12/24-hour conversions.
    """
    q = question.strip()
    answer = parse(q) or parse("what day will it be " + q) or parse("what time will it be " + q)
    if answer is None:
        return SkillResult(
            "I can only work out dates and times I parse exactly, e.g. /when in 3 days or /when next monday.",
            title="when",
            notify=False,
        )
    local = ctx.local_now()
    return SkillResult(answer(local), title="when", data={"local_time": local.isoformat()})
