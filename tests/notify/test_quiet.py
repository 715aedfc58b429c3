"""Quiet hours: wall-clock windows in a zoneinfo zone, crossing midnight, correct across DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from assistant.config import load_settings
from assistant.core.errors import ConfigError
from assistant.core.localtime import parse_quiet_hours
from assistant.notify.models import Notification
from assistant.notify.outbox import Outbox
from assistant.notify.quiet import QuietHours
from assistant.notify.service import Notifier
from tests.fakes import FixedClock


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


class ListChannel:
    """An in-memory channel for unit tests (the real channels are tested against real receivers)."""

    name = "list"
    max_attempts = 0

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    def send(self, notification: Notification) -> None:
        self.sent.append(notification)

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    "bad", ["22-07", "25:00-07:00", "22:00-07:60", "22:00", "07:00-07:00", "ab:cd-ef:gh"]
)
def test_bad_quiet_hours_are_rejected_naming_the_key(bad: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        parse_quiet_hours(bad)
    with pytest.raises(ConfigError, match="notify.quiet_hours"):
        load_settings(None, data_dir=tmp_path, notify={"quiet_hours": bad})


def test_window_within_one_day() -> None:
    q = QuietHours.parse("13:00-14:30", "UTC")
    assert q.ends_at(utc(2026, 1, 15, 12, 59)) is None
    assert q.ends_at(utc(2026, 1, 15, 13, 0)) == utc(2026, 1, 15, 14, 30)
    assert q.ends_at(utc(2026, 1, 15, 14, 29, 59)) == utc(2026, 1, 15, 14, 30)
    assert q.ends_at(utc(2026, 1, 15, 14, 30)) is None


def test_window_crossing_midnight_in_winter_berlin() -> None:
    q = QuietHours.parse("22:00-07:00", "Europe/Berlin")  # CET = UTC+1 in January
    assert q.ends_at(utc(2026, 1, 15, 20, 59)) is None  # 21:59 local
    assert q.ends_at(utc(2026, 1, 15, 21, 0)) == utc(2026, 1, 16, 6, 0)  # 22:00 local -> 07:00 next day
    assert q.ends_at(utc(2026, 1, 15, 23, 30)) == utc(2026, 1, 16, 6, 0)  # 00:30 local, after midnight
    assert q.ends_at(utc(2026, 1, 16, 5, 59)) == utc(2026, 1, 16, 6, 0)  # 06:59 local
    assert q.ends_at(utc(2026, 1, 16, 6, 0)) is None  # 07:00 local


def test_spring_forward_night_is_one_hour_shorter() -> None:
    # Europe/Berlin: 2026-03-29 02:00 CET -> 03:00 CEST.
    q = QuietHours.parse("22:00-07:00", "Europe/Berlin")
    start = utc(2026, 3, 28, 21, 0)  # 22:00 CET
    end = q.ends_at(start)
    assert end == utc(2026, 3, 29, 5, 0)  # 07:00 CEST
    assert end - start == timedelta(hours=8)
    # America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT.
    q_ny = QuietHours.parse("22:00-07:00", "America/New_York")
    assert q_ny.ends_at(utc(2026, 3, 8, 4, 0)) == utc(2026, 3, 8, 11, 0)  # 23:00 EST -> 07:00 EDT


def test_fall_back_night_is_one_hour_longer() -> None:
    # Europe/Berlin: 2026-10-25 03:00 CEST -> 02:00 CET.
    q = QuietHours.parse("22:00-07:00", "Europe/Berlin")
    start = utc(2026, 10, 24, 20, 0)  # 22:00 CEST
    end = q.ends_at(start)
    assert end == utc(2026, 10, 25, 6, 0)  # 07:00 CET
    assert end - start == timedelta(hours=10)
    # Inside the repeated hour (02:30 CET, second time round) it is still quiet, ending at 07:00 CET.
    assert q.ends_at(utc(2026, 10, 25, 1, 30)) == utc(2026, 10, 25, 6, 0)


def test_end_time_in_a_dst_gap_ends_when_the_clocks_jump() -> None:
    # 02:30 does not exist in Berlin on 2026-03-29; the window ends at the jump (03:00 CEST = 01:00 UTC).
    q = QuietHours.parse("01:00-02:30", "Europe/Berlin")
    assert q.ends_at(utc(2026, 3, 29, 0, 30)) == utc(2026, 3, 29, 1, 0)
    assert not q.is_quiet(utc(2026, 3, 29, 1, 0))


def test_end_time_repeated_by_fall_back_ends_at_its_first_occurrence() -> None:
    q = QuietHours.parse("00:00-02:30", "Europe/Berlin")
    assert q.ends_at(utc(2026, 10, 24, 23, 0)) == utc(2026, 10, 25, 0, 30)  # 02:30 CEST


def test_urgent_is_never_held() -> None:
    q = QuietHours.parse("22:00-07:00", "UTC")
    night = utc(2026, 1, 15, 23, 0)
    assert q.release_at(night, urgent=True) == night
    assert q.release_at(night, urgent=False) == utc(2026, 1, 16, 7, 0)


def test_notifier_holds_non_urgent_until_quiet_hours_end(tmp_path: Path) -> None:
    clock = FixedClock(utc(2026, 3, 28, 22, 30))  # 23:30 CET, the night the clocks spring forward
    channel = ListChannel()
    notifier = Notifier(
        Outbox(tmp_path / "n.sqlite3"),
        clock,
        channels=[channel],
        quiet=QuietHours.parse("22:00-07:00", "Europe/Berlin"),
    )
    try:
        calm = notifier.notify("Digest", "three new items", source="digest")
        loud = notifier.notify("Smoke alarm", "kitchen", source="test", urgent=True)
        report = notifier.deliver_due()
        assert [n.id for n in channel.sent] == [loud.id]
        assert report.released == 0
        held = notifier.get(calm.id)
        assert held is not None and held.held_until == "2026-03-29T05:00:00.000+00:00"
        assert held.channels[0].status == "pending"

        clock.set(utc(2026, 3, 29, 4, 59, 59))  # 06:59:59 CEST
        notifier.deliver_due()
        assert [n.id for n in channel.sent] == [loud.id]

        clock.set(utc(2026, 3, 29, 5, 0))  # 07:00 CEST
        report = notifier.deliver_due()
        assert report.released == 1
        assert [n.id for n in channel.sent] == [loud.id, calm.id]
        after = notifier.get(calm.id)
        assert after is not None and after.held_until is None and after.channels[0].status == "delivered"
        # Nothing is delivered twice.
        notifier.deliver_due()
        assert len(channel.sent) == 2
    finally:
        notifier.close()
