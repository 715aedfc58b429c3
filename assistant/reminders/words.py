"""The words of reminders, timers and alarms: the vocabulary and patterns of durations ("in half an hour",
"2h"), times of day ("quarter past 7", "noon"), days ("tomorrow", "next Tuesday", "March 20"), recurrence
("every other day"), the requests themselves ("remind me", "set a timer", "wake me up"), typos, and the
readers that turn a match into numbers. assistant.reminders.parse puts them together."""

from __future__ import annotations

import difflib
import re
from datetime import date, datetime, time, timedelta

REMINDER, TIMER, ALARM = "reminder", "timer", "alarm"
DEFAULT_HOUR = 9  # a day named without a time
PART_OF_DAY = {"morning": 8, "afternoon": 15, "evening": 18, "tonight": 20, "night": 20}

VOCAB = (
    "remind", "reminder", "tomorrow", "tonight", "minutes", "minute", "seconds", "second", "hours", "hour",
    "morning", "evening", "afternoon", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
    "sunday", "timer", "alarm", "quarter", "weekdays", "weekends", "every", "o'clock",
)  # fmt: skip
TYPOS = {"tmrw": "tomorrow", "tmr": "tomorrow", "tmrrw": "tomorrow", "tonite": "tonight", "2morrow": "tomorrow",
          "mins": "minutes", "min": "minutes", "hrs": "hours", "hr": "hours", "secs": "seconds", "sec": "seconds",
          "weds": "wednesday", "tues": "tuesday", "thurs": "thursday", "remid": "remind", "rmind": "remind",
          "pls": "please", "plz": "please", "alarn": "alarm", "tiemr": "timer", "timr": "timer"}  # fmt: skip
NUMBERS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
    "forty-five": 45, "fifty": 50, "sixty": 60, "ninety": 90, "couple": 2, "a couple of": 2, "few": 3,
    "a few": 3, "twenty-five": 25, "thirty-five": 35,
}  # fmt: skip
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec|january|february|march|april|june|july|august|september|october|november|december"  # noqa: E501
UNIT = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600,
         "d": 86400, "day": 86400, "w": 604800, "week": 604800}  # fmt: skip

NUM = r"(?:\d+(?:\.\d+)?|a couple of|a few|couple of|few|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty-five|thirty-five|forty-five|twenty|thirty|forty|fifty|sixty|ninety)"  # noqa: E501
UNITS = r"(?:seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?|w)"
ONE = rf"\b{NUM}(?:(?<=\d)\s*|\s+)(?:and a half\s+)?{UNITS}\b(?:\s+and\s+a\s+half)?"
DURATION = re.compile(
    rf"\b(?:(?P<in>in|for|after)\s+)?(?P<dur>half an hour|half a minute|(?:a\s+)?quarter of an hour|"
    rf"{ONE}(?:\s*(?:,|and)?\s*\d+\s*(?:minutes?|mins?|m|seconds?|secs?|s)\b)?|\d+h\d+)\b"
    rf"(?:\s+from now)?(?:\s+(?:long|timer))?"
)
HOURWORD = r"(?:\d{1,2}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"
CLOCK = re.compile(
    rf"\b(?:(?:at|for|by|@)\s+)?(?:"
    rf"(?P<noon>noon|midday|midnight)|"
    rf"(?P<rel>quarter past|half past|quarter to|(?:five|ten|twenty|twenty-five|\d{{1,2}}) (?:minutes )?(?:past|to)) (?P<rh>{HOURWORD})|"  # noqa: E501
    rf"half (?P<half>{HOURWORD})|"
    rf"(?P<h>\d{{1,2}})(?:[:.h](?P<m>\d{{2}}))\s*(?P<ap>am|pm|a\.m\.?|p\.m\.?)?|"
    rf"(?P<h2>\d{{1,2}})\s*(?P<ap2>am|pm|a\.m\.?|p\.m\.?|o'?clock)|"
    rf"(?P<wh>{HOURWORD})(?:\s+(?P<wm>thirty|fifteen|forty-five|\d{{2}}|o'?clock))?\s*(?P<ap3>am|pm)?"
    rf")(?P<ctx>\s+(?:in the (?:morning|afternoon|evening)|at night|tonight|this (?:morning|afternoon|evening)))?\b"
)
DAYWORD = re.compile(
    r"\b(?:the day after tomorrow|next week|tomorrow(?: (?:morning|afternoon|evening|night))?|tonight|today|"
    r"this (?:morning|afternoon|evening)|in the (?:morning|afternoon|evening)|"
    r"(?:on |next |this |coming )?(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
    r"(?: (?:morning|afternoon|evening|night))?)\b"
)
DATE = re.compile(
    rf"\b(?:on\s+)?(?:(?:the\s+)?\d{{1,2}}(?:st|nd|rd|th)?(?:\s+of)?\s+(?:{MONTHS})\b|(?:{MONTHS})\s+(?:the\s+)?"
    rf"\d{{1,2}}(?:st|nd|rd|th)?\b|the\s+\d{{1,2}}(?:st|nd|rd|th)\b)"
)
RECUR = re.compile(
    r"\b(?:(?:every|each)\s+(?:other\s+)?(?:day|morning|evening|night|weekday|weekend|hour|minute|week"
    r"|(?:\d+|two|three|four|five|ten|fifteen|thirty)\s+(?:minutes?|hours?|days?|weeks?)"
    r"|(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
    r"(?:\s*(?:,|and)\s*(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday))*)|"
    r"on\s+(?:weekdays|weekends|(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)s)|"
    r"daily|weekdays|on work days|every work ?day|nightly)\b"
)
TIMER_WORD = re.compile(r"\btimer\b")
# Without a time, only "remind me to/about/that ..." is a reminder still to be timed; "remind me what we said",
# "remind me: the key is under the pot" are questions and notes for the model (and memory).
TO_BE_TIMED = re.compile(r"\b(?:remind me|reminder|don'?t let me forget)\s+(?:(?:in|at|on|by)\s+\S+\s+)?(?:to|about|that)\b")
ALARM_START = re.compile(r"^(?:please\s+)?(?:can you\s+|could you\s+)?(?:wake me(?: up)?|(?:set|make|put)\s+(?:an?\s+|my\s+)?"
                    r"alarms?|alarm)\b")  # fmt: skip
REMIND = re.compile(
    r"^(?:(?:hey|ok|okay|please|can you|could you|would you|will you|pls)[\s,]+)*(?:"
    r"remind me|set (?:a |me a )?reminder|reminder|add a reminder|create a reminder|"
    r"don'?t let me forget)\b"
)
TIMER_START = re.compile(
    r"^(?:(?:hey|ok|okay|please|can you|could you|pls)[\s,]+)*(?:(?:set|start|put on|make|run|begin)\s+(?:an?\s+|the\s+|my\s+|me\s+a\s+)?|"  # noqa: E501
    r"timer\b|\d+|an?\s|one|two|three|four|five|ten|fifteen|twenty|thirty)"
)



def normalise(text: str) -> str:
    """Lower case, one space, common typos and close misspellings of the words that carry time."""
    s = re.sub(r"\s+", " ", text.lower().replace("’", "'")).strip(" .!?")
    words = []
    for word in s.split(" "):
        bare = word.strip(",")
        fixed = TYPOS.get(bare)
        if fixed is None and len(bare) >= 5 and bare.isalpha() and bare not in VOCAB:
            close = difflib.get_close_matches(bare, VOCAB, n=1, cutoff=0.8)
            fixed = close[0] if close and not is_word(bare) else None
        words.append(word.replace(bare, fixed) if fixed else word)
    return " ".join(words)


def is_word(word: str) -> bool:
    # real words close to the vocabulary that must stay what they are
    return word in {"hourly", "every", "minutely", "alarms", "timers", "reminders", "remains", "evenings",
                    "mornings", "second", "seconds", "mondays", "tuesdays", "fridays", "sundays", "saturdays",
                    "thursdays", "wednesdays", "remained", "remainder", "quarters", "alarmed", "hours", "night",
                    "nights", "weekday", "weekend", "tonight", "minute", "hour"}  # fmt: skip


def intent(s: str) -> str | None:
    """The kind of request in normalised text, or None."""
    if REMIND.match(s):
        return REMINDER
    if ALARM_START.match(s):
        return ALARM
    if TIMER_WORD.search(s) and TIMER_START.match(s) and DURATION.search(s):
        return TIMER
    if TIMER_WORD.search(s) and re.match(r"^(?:(?:please|can you|could you)\s+)?(?:set|start|make)\b", s):
        return TIMER
    return None


def number(word: str) -> float:
    word = word.strip()
    if word in NUMBERS:
        return float(NUMBERS[word])
    return float(word)


def duration(text: str) -> timedelta:
    t = text.strip()
    if t == "half an hour":
        return timedelta(minutes=30)
    if t == "half a minute":
        return timedelta(seconds=30)
    if "quarter of an hour" in t:
        return timedelta(minutes=15)
    m = re.fullmatch(r"(\d+)h(\d+)", t)
    if m:
        return timedelta(hours=int(m.group(1)), minutes=int(m.group(2)))
    total = 0.0
    for m in re.finditer(
        rf"\b({NUM})(?:(?<=\d)\s*|\s+)(and a half\s+)?({UNITS})\b(\s+and\s+a\s+half)?|(\d+)\s*(minutes?|mins?|m|seconds?|secs?|s)\b",
        t,
    ):  # noqa: E501
        if m.group(5):
            total += int(m.group(5)) * unit(m.group(6))
            continue
        n = number(m.group(1)) + (0.5 if m.group(2) or m.group(4) else 0.0)
        total += n * unit(m.group(3))
    return timedelta(seconds=round(total))


def unit(word: str) -> int:
    w = word.rstrip("s") if len(word) > 1 else word
    return UNIT.get(w, UNIT.get(word[0], 60))


def hour(word: str) -> int:
    return int(NUMBERS[word]) if word in NUMBERS else int(word)


def read_clock(m: re.Match[str]) -> tuple[int, int, bool, str | None] | None:
    """(hour, minute, am/pm known, context word) of a CLOCK match, or None when it is not a time."""
    ctx = m.group("ctx")
    context = None
    if ctx:
        context = next(w for w in ("morning", "afternoon", "evening", "tonight", "night") if w in ctx)
    if m.group("noon"):
        return (0, 0, True, None) if m.group("noon") == "midnight" else (12, 0, True, None)
    if m.group("rel"):
        h, rel = hour(m.group("rh")), m.group("rel")
        if rel == "quarter past":
            hh, mm = h, 15
        elif rel == "half past":
            hh, mm = h, 30
        elif rel == "quarter to":
            hh, mm = h - 1, 45
        else:
            n = int(number(rel.split(" ")[0]))
            hh, mm = (h, n) if rel.endswith("past") else (h - 1, 60 - n)
        return (hh % 24, mm, h > 12, context)
    if m.group("half"):
        return (hour(m.group("half")), 30, False, context)
    if m.group("h") is not None:
        h, mm, ap = int(m.group("h")), int(m.group("m")), m.group("ap")
        if h > 23 or mm > 59:
            return None
        return (
            *apply_ampm(h, ap),
            mm,
            bool(ap) or h == 0 or h > 12 or m.group("h").startswith("0"),
            context,
        )
    if m.group("h2") is not None:
        h, ap = int(m.group("h2")), m.group("ap2")
        if h > 23:
            return None
        known = not ap.startswith("o")
        return (apply_ampm(h, ap if known else None)[0], 0, known or h > 12 or h == 0, context)
    word = m.group("wh")
    full = m.group(0).strip()
    if not word or not re.match(r"^(?:at|for|by|@)\s", full):
        return None  # a bare number is not a time ("set a timer for 10")
    h = hour(word)
    if h > 23:
        return None
    wm = m.group("wm")
    mm = 0 if not wm or wm.startswith("o") else int(number(wm))
    ap = m.group("ap3")
    return (apply_ampm(h, ap)[0], mm, bool(ap) or h > 12 or h == 0, context)


def apply_ampm(h: int, ap: str | None) -> tuple[int]:
    if not ap:
        return (h,)
    if ap.startswith("p") and h < 12:
        return (h + 12,)
    if ap.startswith("a") and h == 12:
        return (0,)
    return (h,)


def next_weekday(today: date, weekday: int, *, include_today: bool = False) -> date:
    ahead = (weekday - today.weekday()) % 7
    if ahead == 0 and not include_today:
        ahead = 7
    return today + timedelta(days=ahead)


def calendar_date(text: str, today: date) -> date | None:
    """A calendar date ("March 20", "the 24th of December", "the 14th"), the next one on or after today."""
    m = re.fullmatch(r"(?:on\s+)?the\s+(\d{1,2})(?:st|nd|rd|th)", text.strip())
    if m:
        day = int(m.group(1))
        for months in range(0, 13):
            y, mo = divmod(today.month - 1 + months, 12)
            try:
                d = date(today.year + y, mo + 1, day)
            except ValueError:
                continue
            if d >= today:
                return d
        return None
    import parsedatetime  # type: ignore[import-untyped]

    cal = parsedatetime.Calendar(version=parsedatetime.VERSION_CONTEXT_STYLE)
    source = datetime.combine(today, time(12, 0))
    with cal.context() as ctx:
        found, _ = cal.parseDT(re.sub(r"^on\s+|\bthe\s+|\bof\s+", "", text.strip()), sourceTime=source)
    if not ctx.hasDate:
        return None
    d = found.date()
    if d < today:  # parsedatetime keeps a past date of this year
        try:
            d = d.replace(year=d.year + 1)
        except ValueError:
            return None
    return d


