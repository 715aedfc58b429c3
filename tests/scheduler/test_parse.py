"""Natural schedules -> the cron they became; unparseable ones are a 400 that says so."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from assistant.core.errors import BadRequest
from assistant.skillkit.schedule_parse import parse_schedule


@pytest.mark.parametrize(
    ("text", "cron"),
    [
        ("every weekday at 7:30", "30 7 * * 1-5"),
        ("Every weekday at 07:30", "30 7 * * 1-5"),
        ("weekdays at 7:30am", "30 7 * * 1-5"),
        ("every day at 8", "0 8 * * *"),
        ("daily at 6pm", "0 18 * * *"),
        ("daily at 12am", "0 0 * * *"),
        ("every day at noon", "0 12 * * *"),
        ("at midnight", "0 0 * * *"),
        ("every monday at 9", "0 9 * * 1"),
        ("every monday and thursday at 18:00", "0 18 * * 1,4"),
        ("every sat, sun at 10", "0 10 * * 0,6"),
        ("every weekend at 10:15", "15 10 * * 0,6"),
        ("at 9 on mondays", "0 9 * * 1"),
        ("at 21:05 every sunday", "5 21 * * 0"),
        ("every day at 8 and 20", "0 8,20 * * *"),
        ("every day at 19h30", "30 19 * * *"),
        ("hourly", "0 * * * *"),
        ("every hour", "0 * * * *"),
        ("every minute", "* * * * *"),
        ("@daily", "0 0 * * *"),
        ("30 7 * * 1-5", "30 7 * * 1-5"),
        ("*/10 * * * *", "*/10 * * * *"),
        ("cron: 0 8 * jan-mar mon", "0 8 * jan-mar mon"),
    ],
)
def test_natural_schedules_become_cron(text: str, cron: str) -> None:
    parsed = parse_schedule(text)
    assert parsed.cron == cron
    assert f"cron {cron}" in parsed.describe()  # natural ones also in words: "every weekday at 07:30 (cron ...)"
    assert parsed.to_dict()["schedule"] == text


@pytest.mark.parametrize(
    ("text", "seconds", "shown"),
    [
        ("every 15 minutes", 900, "every 15 minutes"),
        ("every 15 min", 900, "every 15 minutes"),
        ("every 2 hours", 7200, "every 2 hours"),
        ("every 90 seconds", 90, "every 90 seconds"),
        ("every 1 day", 86400, "every 1 day"),
    ],
)
def test_intervals(text: str, seconds: int, shown: str) -> None:
    parsed = parse_schedule(text)
    assert parsed.kind == "interval" and parsed.interval_seconds == seconds and parsed.cron is None
    assert parsed.describe() == shown


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "it is empty"),
        ("sometimes", "say when"),
        ("tomorrow at 8", "'tomorrow' is not a set of days"),
        ("every day at 25:00", "is not a time"),
        ("every day at 13pm", "hour must be 1-12"),
        ("every day at 8:00 and 9:30", "same minute"),
        ("every 10 seconds", "more often than every 60 seconds"),
        ("every 5 fortnights", "unknown unit"),
        ("0 25 * * *", "higher than the maximum"),
        ("0 8 * * 9", "day of week '9'"),
        ("0 8 1 * 1", "both day of month and day of week"),
        ("every blursday at 8", "'blursday' is not a day"),
        ("every 600000 weeks", "less often than every 3660 days"),  # APScheduler's datetimes overflowed: 500
        ("every 5271 days", "less often than every 3660 days"),
        ("every " + "9" * 150 + " minutes", "less often than every 3660 days"),
        ("0 99999999999999999999 * * *", "higher than the maximum"),
    ],
)
def test_unparseable_schedules_say_why(text: str, why: str) -> None:
    with pytest.raises(BadRequest) as err:
        parse_schedule(text)
    assert err.value.status == 400 and err.value.code == "bad_schedule"
    assert why in err.value.message and "cannot understand the schedule" in err.value.message
    assert "every weekday at 7:30" in err.value.message  # says what would work


@pytest.mark.parametrize(
    ("cron", "weekday"),
    [("0 9 * * 0", "Sunday"), ("0 9 * * 7", "Sunday"), ("0 9 * * 1", "Monday"), ("0 9 * * 6", "Saturday"),
     ("0 9 * * sun", "Sunday")],
)  # fmt: skip
def test_cron_weekdays_are_standard_not_apscheduler_numbering(cron: str, weekday: str) -> None:
    """APScheduler 3 counts weekdays from Monday = 0; crontab (and what users type) from Sunday = 0."""
    trigger = parse_schedule(cron).trigger(UTC)
    nxt = trigger.get_next_fire_time(None, datetime(2026, 1, 15, 12, 0, tzinfo=UTC))  # a Thursday
    assert f"{nxt:%A}" == weekday


def test_weekday_ranges_wrap_to_sunday() -> None:
    trigger = parse_schedule("0 9 * * 5-7").trigger(UTC)
    now, seen = datetime(2026, 1, 12, 0, 0, tzinfo=UTC), []  # a Monday
    for _ in range(3):
        now = trigger.get_next_fire_time(None, now)
        seen.append(f"{now:%a}")
        now = now.replace(hour=10)
    assert seen == ["Fri", "Sat", "Sun"]


def test_the_longest_interval_still_gives_a_next_run() -> None:
    parsed = parse_schedule("every 522 weeks")  # 3654 days: under the ten-year cap
    assert parsed.interval_seconds == 522 * 604800
    start = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    nxt = parsed.trigger(UTC, start).get_next_fire_time(None, start)
    assert nxt == start
