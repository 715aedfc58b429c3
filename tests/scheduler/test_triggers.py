"""Triggers with a fixed "now" (APScheduler 3 triggers are datetime in, datetime out): cron, interval,
DST changes, per-schedule time zones. No sleeping."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from assistant.skillkit.schedule_parse import parse_schedule

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def fire_times(
    schedule: str, tz: ZoneInfo, now: datetime, n: int, start: datetime | None = None
) -> list[datetime]:
    """The next ``n`` fire times, the way the scheduler walks them (previous fire time fed back)."""
    trigger = pickle.loads(pickle.dumps(parse_schedule(schedule).trigger(tz, start=start)))  # as stored
    times: list[datetime] = []
    prev = None
    for _ in range(n):
        nxt = trigger.get_next_fire_time(prev, now)
        assert nxt is not None
        times.append(nxt)
        prev, now = nxt, nxt.astimezone(UTC)
    return times


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_every_weekday_skips_the_weekend() -> None:
    now = datetime(2026, 1, 16, 8, 0, tzinfo=BERLIN)  # Friday, after 7:30
    times = fire_times("every weekday at 7:30", BERLIN, now, 6)
    assert [f"{t:%a %H:%M}" for t in times] == ["Mon 07:30", "Tue 07:30", "Wed 07:30", "Thu 07:30",
                                                "Fri 07:30", "Mon 07:30"]  # fmt: skip
    assert times[0] == utc(2026, 1, 19, 6, 30)


def test_same_cron_in_two_zones_fires_at_different_instants() -> None:
    now = utc(2026, 1, 15, 0, 0)
    berlin = fire_times("every day at 8", BERLIN, now, 1)[0]
    new_york = fire_times("every day at 8", NEW_YORK, now, 1)[0]
    assert berlin == utc(2026, 1, 15, 7, 0)
    assert new_york == utc(2026, 1, 15, 13, 0)


def test_local_time_is_kept_across_dst_in_new_york() -> None:
    """DST starts 2026-03-08: 8:00 local moves from 13:00 UTC to 12:00 UTC."""
    times = fire_times("every day at 8", NEW_YORK, utc(2026, 3, 6, 14, 0), 4)
    assert [t.astimezone(UTC) for t in times] == [
        utc(2026, 3, 7, 13, 0), utc(2026, 3, 8, 12, 0), utc(2026, 3, 9, 12, 0), utc(2026, 3, 10, 12, 0)
    ]  # fmt: skip
    assert all(t.astimezone(NEW_YORK).hour == 8 for t in times)


def test_a_repeated_wall_time_fires_once_when_clocks_go_back() -> None:
    """Berlin 2026-10-25: 02:00-03:00 happens twice. A job at 02:30 runs once that night (like cron)."""
    times = fire_times("every day at 2:30", BERLIN, utc(2026, 10, 23, 12, 0), 4)
    assert [t.astimezone(UTC) for t in times] == [
        utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30), utc(2026, 10, 27, 1, 30)
    ]  # fmt: skip


def test_a_skipped_wall_time_still_fires_once_when_clocks_go_forward() -> None:
    """Berlin 2026-03-29: 02:00-03:00 does not exist. The 02:30 job runs that day, once, an hour later."""
    times = fire_times("every day at 2:30", BERLIN, utc(2026, 3, 27, 12, 0), 3)
    assert [t.astimezone(UTC) for t in times] == [
        utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)
    ]  # fmt: skip
    assert times[1].astimezone(UTC).astimezone(BERLIN).strftime("%H:%M %Z") == "03:30 CEST"


def test_frequent_cron_keeps_running_through_the_repeated_hour() -> None:
    times = fire_times("*/30 * * * *", BERLIN, utc(2026, 10, 24, 23, 45), 4)
    assert [t.astimezone(UTC) for t in times] == [
        utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 0), utc(2026, 10, 25, 1, 30)
    ]  # fmt: skip


def test_interval_counts_real_time_across_dst() -> None:
    start = utc(2026, 10, 24, 23, 0)
    times = fire_times("every 45 minutes", BERLIN, start, 5, start=start)
    gaps = {b.astimezone(UTC) - a.astimezone(UTC) for a, b in zip(times, times[1:], strict=False)}
    assert gaps == {timedelta(minutes=45)}
    assert times[0] == start


def test_interval_after_a_long_gap_resumes_on_its_grid() -> None:
    start = utc(2026, 1, 15, 12, 0)
    trigger = parse_schedule("every 15 minutes").trigger(UTC, start=start)
    nxt = trigger.get_next_fire_time(None, utc(2026, 1, 15, 22, 7))  # ten hours later
    assert nxt == utc(2026, 1, 15, 22, 15)


def test_per_schedule_zone_weekday_boundary() -> None:
    """Friday 23:30 in New York is already Saturday in Berlin: a weekday job differs by zone."""
    now = utc(2026, 1, 17, 4, 0)  # Fri 23:00 New York, Sat 05:00 Berlin
    ny = fire_times("every weekday at 23:30", NEW_YORK, now, 1)[0]
    berlin = fire_times("every weekday at 23:30", BERLIN, now, 1)[0]
    assert ny == utc(2026, 1, 17, 4, 30)  # still Friday there
    assert berlin == utc(2026, 1, 19, 22, 30)  # Monday
