"""Which library reads reminder times? Each of dateparser, parsedatetime and recurrent is given every phrase
of tests/reminder_phrases.py whole (at the same fixed instant, in both zones) and scored on the exact fire
time; assistant.reminders.parse is scored the same way. Questions ("?") count right only for ours.

    .venv/bin/python benchmarks/bench_reminder_parsers.py
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.reminder_phrases import NOW, PHRASES, ZONES  # noqa: E402
from tests.reminders.test_parse import expected_due  # noqa: E402


def _dateparser(text: str, now: datetime, zone: ZoneInfo) -> datetime | None:
    from dateparser.search import search_dates  # parse() wants the date alone; search finds it in a sentence

    settings = {"RELATIVE_BASE": now.astimezone(zone).replace(tzinfo=None), "PREFER_DATES_FROM": "future"}
    found = search_dates(text, languages=["en"], settings=settings)  # type: ignore[arg-type]
    return found[0][1].replace(tzinfo=zone) if found else None


def _parsedatetime(text: str, now: datetime, zone: ZoneInfo) -> datetime | None:
    import parsedatetime  # type: ignore[import-untyped]

    cal = parsedatetime.Calendar(version=parsedatetime.VERSION_CONTEXT_STYLE)
    found, status = cal.parseDT(text, sourceTime=now.astimezone(zone).replace(tzinfo=None))
    return found.replace(tzinfo=zone) if status else None


def _recurrent(text: str, now: datetime, zone: ZoneInfo) -> datetime | None:
    from recurrent.event_parser import RecurringEvent  # type: ignore[import-untyped]

    found = RecurringEvent(now_date=now.astimezone(zone).replace(tzinfo=None)).parse(text)
    return found.replace(tzinfo=zone) if isinstance(found, datetime) else None


def _ours(text: str, now: datetime, zone: ZoneInfo) -> datetime | None:
    from assistant.reminders.parse import Parsed, parse_request

    got = parse_request(text, now, zone)
    return got.due if isinstance(got, Parsed) else None


def main() -> None:
    warnings.filterwarnings("ignore")
    readers: dict[str, Callable[[str, datetime, ZoneInfo], datetime | None]] = {
        "dateparser": _dateparser, "parsedatetime": _parsedatetime, "recurrent": _recurrent, "ours": _ours,
    }  # fmt: skip
    cases = [(p, ZoneInfo(z), b if z == ZONES[0] else (n or b)) for p, _, _, b, n in PHRASES for z in ZONES]
    timed = [(p, z, e) for p, z, e in cases if e != "?"]
    print(f"{len(PHRASES)} phrases x {len(ZONES)} zones = {len(cases)} cases, {len(timed)} with a fire time")
    for name, read in readers.items():
        right = 0
        for phrase, zone, expect in timed:
            try:
                got = read(phrase, NOW, zone)
            except Exception:  # noqa: BLE001 - a library that raises got it wrong
                got = None
            right += got is not None and got == expected_due(expect, zone)
        print(f"{name:14} {right:4d}/{len(timed)} exact fire times ({100 * right / len(timed):.1f}%)")


if __name__ == "__main__":
    main()
