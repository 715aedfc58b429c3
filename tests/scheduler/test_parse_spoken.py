"""Schedules people say ("every 3 days at 8", "on the first Monday of the month", "every weekday at 8 and
weekends at 10"): what they become, what is shown back, and when they run, with a fixed "now"."""

from __future__ import annotations

import pickle
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.combining import OrTrigger

from assistant.core.errors import BadRequest
from assistant.services import Services
from assistant.skillkit.schedule_parse import WallClockInterval, parse_schedule

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 3, 20, 12, 0, tzinfo=BERLIN)  # a Friday, nine days before the clocks go forward


def runs(text: str, n: int = 4, now: datetime = NOW) -> list[str]:
    """The next ``n`` runs as "Mon 03-23 08:00 +0100", each computed from the one before, as APScheduler does."""
    trigger = parse_schedule(text).trigger(BERLIN, now)
    out: list[str] = []
    previous = None
    for _ in range(n):
        previous = trigger.get_next_fire_time(previous, previous or now)
        assert previous is not None
        out.append(f"{previous.astimezone(BERLIN):%a %m-%d %H:%M %z}")
    return out


@pytest.mark.parametrize(
    ("text", "shown", "first_runs"),
    [
        ("every 3 days at 8", "every 3 days at 08:00",
         ["Sat 03-21 08:00 +0100", "Tue 03-24 08:00 +0100", "Fri 03-27 08:00 +0100", "Mon 03-30 08:00 +0200"]),
        ("every other day at 9", "every 2 days at 09:00",
         ["Sat 03-21 09:00 +0100", "Mon 03-23 09:00 +0100", "Wed 03-25 09:00 +0100", "Fri 03-27 09:00 +0100"]),
        ("every 2 weeks on friday at 17:00", "every 2 weeks on Friday at 17:00",
         ["Fri 03-20 17:00 +0100", "Fri 04-03 17:00 +0200", "Fri 04-17 17:00 +0200", "Fri 05-01 17:00 +0200"]),
        ("every other monday at 9", "every 2 weeks on Monday at 09:00",
         ["Mon 03-23 09:00 +0100", "Mon 04-06 09:00 +0200", "Mon 04-20 09:00 +0200", "Mon 05-04 09:00 +0200"]),
        ("every weekday at 8", "every weekday at 08:00 (cron 0 8 * * 1-5)",
         ["Mon 03-23 08:00 +0100", "Tue 03-24 08:00 +0100", "Wed 03-25 08:00 +0100", "Thu 03-26 08:00 +0100"]),
        ("on the first Monday of the month", "on the first Monday of every month at 00:00",
         ["Mon 04-06 00:00 +0200", "Mon 05-04 00:00 +0200", "Mon 06-01 00:00 +0200", "Mon 07-06 00:00 +0200"]),
        ("on the first monday of the month at 9", "on the first Monday of every month at 09:00",
         ["Mon 04-06 09:00 +0200", "Mon 05-04 09:00 +0200", "Mon 06-01 09:00 +0200", "Mon 07-06 09:00 +0200"]),
        ("monthly on the last friday at 17", "on the last Friday of every month at 17:00",
         ["Fri 03-27 17:00 +0100", "Fri 04-24 17:00 +0200", "Fri 05-29 17:00 +0200", "Fri 06-26 17:00 +0200"]),
        ("the 1st and 15th of every month at 8", "on day 1 and day 15 of every month at 08:00",
         ["Wed 04-01 08:00 +0200", "Wed 04-15 08:00 +0200", "Fri 05-01 08:00 +0200", "Fri 05-15 08:00 +0200"]),
        ("on the last day of the month at 18", "on the last day of every month at 18:00",
         ["Tue 03-31 18:00 +0200", "Thu 04-30 18:00 +0200", "Sun 05-31 18:00 +0200", "Tue 06-30 18:00 +0200"]),
        ("on the second tuesday of each month at 7:30", "on the second Tuesday of every month at 07:30",
         ["Tue 04-14 07:30 +0200", "Tue 05-12 07:30 +0200", "Tue 06-09 07:30 +0200", "Tue 07-14 07:30 +0200"]),
        ("every weekday at 8 and weekends at 10",
         "every weekday at 08:00 (cron 0 8 * * 1-5); or every Saturday and Sunday at 10:00 (cron 0 10 * * 0,6)",
         ["Sat 03-21 10:00 +0100", "Sun 03-22 10:00 +0100", "Mon 03-23 08:00 +0100", "Tue 03-24 08:00 +0100"]),
        ("every 3 days at 8 and 20", "every 3 days at 08:00; or every 3 days at 20:00",
         ["Fri 03-20 20:00 +0100", "Sat 03-21 08:00 +0100", "Mon 03-23 20:00 +0100", "Tue 03-24 08:00 +0100"]),
    ],
)  # fmt: skip
def test_spoken_schedules(text: str, shown: str, first_runs: list[str]) -> None:
    parsed = parse_schedule(text)
    assert parsed.describe() == shown
    assert parsed.to_dict()["description"] == shown and parsed.to_dict()["schedule"] == text
    assert runs(text) == first_runs


def test_kinds_and_triggers() -> None:
    assert parse_schedule("every 3 days at 8").kind == "interval"
    assert isinstance(parse_schedule("every 3 days at 8").trigger(BERLIN, NOW), WallClockInterval)
    assert parse_schedule("on the first monday of the month").kind == "monthly"
    combined = parse_schedule("every weekday at 8 and weekends at 10")
    assert combined.kind == "any" and len(combined.parts) == 2
    assert isinstance(combined.trigger(BERLIN, NOW), OrTrigger)
    assert parse_schedule("every 3 days").describe() == "every 3 days"  # no time: real time, as before


def test_every_n_days_keeps_its_wall_time_across_both_dst_changes() -> None:
    spring = runs("every 7 days at 8", 3, datetime(2026, 3, 21, 12, 0, tzinfo=BERLIN))
    assert spring == ["Sun 03-22 08:00 +0100", "Sun 03-29 08:00 +0200", "Sun 04-05 08:00 +0200"]
    autumn = runs("every 7 days at 8", 3, datetime(2026, 10, 20, 12, 0, tzinfo=BERLIN))
    assert autumn == ["Wed 10-21 08:00 +0200", "Wed 10-28 08:00 +0100", "Wed 11-04 08:00 +0100"]
    # a wall time the clocks skip runs an hour later that day, and the next one is back at 02:30
    skipped = runs("every 7 days at 2:30", 3, datetime(2026, 3, 21, 12, 0, tzinfo=BERLIN))
    assert skipped == ["Sun 03-22 02:30 +0100", "Sun 03-29 03:30 +0200", "Sun 04-05 02:30 +0200"]


def test_a_wall_clock_interval_survives_the_job_store() -> None:
    """The job store pickles triggers; the zone must come back with it."""
    trigger = parse_schedule("every 3 days at 8").trigger(BERLIN, NOW)
    again = pickle.loads(pickle.dumps(trigger))
    assert again.zone == BERLIN
    assert again.get_next_fire_time(None, NOW) == trigger.get_next_fire_time(None, NOW)
    combined = pickle.loads(
        pickle.dumps(parse_schedule("every other day at 9 and hourly").trigger(BERLIN, NOW))
    )
    assert combined.get_next_fire_time(None, NOW) == NOW  # the hour has begun


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("on the 32nd of the month", "not a day of the month"),
        ("on the first blursday of the month", "'blursday' is not a day"),
        ("on the sixth monday of the month", "is not a day of the month like"),
        ("every 3 fortnights at 8", "every N days"),
        ("every 2 days on monday at 8", "is not one weekday of 'every N weeks'"),
        ("every 0 days at 8", "every N days"),
        ("every 5000 days at 8", "less often than every"),
        ("every day at 8:00 and 9:30", "same minute"),
        ("every weekday at 8 and sometimes", "'sometimes' is not a time"),
    ],
)
def test_spoken_schedules_that_cannot_be_understood_say_why(text: str, why: str) -> None:
    with pytest.raises(BadRequest) as err:
        parse_schedule(text)
    assert err.value.code == "bad_schedule" and why in err.value.message
    assert "on the first monday of the month at 9" in err.value.message  # the new forms are suggested


def test_a_long_list_of_parts_is_parsed_in_linear_time() -> None:
    """Joined parts are tried with a memo: 60 bad pieces do not make 2**60 attempts."""
    with pytest.raises(BadRequest):
        parse_schedule(", ".join(["every day at 8"] * 3 + ["nope"] * 60))
    many = parse_schedule("; ".join(f"every day at {h}:15" for h in range(9)))
    assert many.kind == "any" and len(many.parts) == 9


def test_the_scheduler_shows_what_will_run_and_when_and_keeps_it_across_a_restart(
    services: Services, tmp_path: Path
) -> None:
    from assistant.skillkit.scheduler import SkillScheduler

    def open_scheduler() -> SkillScheduler:
        return SkillScheduler(services.skills, tmp_path / "schedules.sqlite3", timezone="Europe/Berlin")

    first = open_scheduler()
    try:
        added = first.add("time", "every 3 days at 8 and on the first monday of the month at 9")
    finally:
        first.shutdown()
    assert added.kind == "any"
    assert added.description == "every 3 days at 08:00; or on the first Monday of every month at 09:00"
    nxt = datetime.fromisoformat(added.next_run_time).astimezone(BERLIN)
    assert (nxt.hour, nxt.minute) in ((8, 0), (9, 0))
    again = open_scheduler()
    try:
        assert again.get(added.id) == added  # the trigger and its zone came back from the job store
    finally:
        again.shutdown()
