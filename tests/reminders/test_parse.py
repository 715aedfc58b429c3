"""The phrase set (tests/reminder_phrases.py): each request as people say it, at one fixed instant in two
zones, gets its exact fire time, or a question; recurring ones keep their wall-clock time across DST."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from assistant.reminders.parse import Clarify, Parsed, next_fire, parse_request
from tests.reminder_phrases import NOT_REQUESTS, NOW, PHRASES, ZONES


def expected_due(expect: str, zone: ZoneInfo) -> datetime | None:
    """The expected fire time (aware UTC) of a table cell, None for a question."""
    if expect == "?":
        return None
    m = re.fullmatch(r"\+(\d+)([ms])", expect)
    if m:
        n = int(m.group(1))
        return NOW + (timedelta(minutes=n) if m.group(2) == "m" else timedelta(seconds=n))
    text = expect if len(expect) > 11 else f"2026-{expect}"
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=zone).astimezone(NOW.tzinfo)


CASES = [
    pytest.param(
        phrase, kind, what, zone, berlin if zone == ZONES[0] else (ny or berlin), id=f"{zone}|{phrase}"
    )
    for phrase, kind, what, berlin, ny in PHRASES
    for zone in ZONES
]


@pytest.mark.parametrize(("phrase", "kind", "what", "zone_name", "expect"), CASES)
def test_phrase(phrase: str, kind: str, what: str, zone_name: str, expect: str) -> None:
    zone = ZoneInfo(zone_name)
    got = parse_request(phrase, NOW, zone)
    due = expected_due(expect, zone)
    if due is None:
        assert isinstance(got, Clarify), f"{phrase!r} should ask, got {got}"
        assert got.question.endswith("?")
        return
    assert isinstance(got, Parsed), f"{phrase!r}: {got}"
    local = got.due.astimezone(zone).strftime("%m-%d %H:%M")
    assert got.due == due, f"{phrase!r} in {zone_name}: {local}, expected {expect}"
    assert got.kind == kind
    assert got.what == what


def test_the_phrase_set_is_large() -> None:
    assert len(PHRASES) >= 150


@pytest.mark.parametrize("text", NOT_REQUESTS)
def test_not_a_request(text: str) -> None:
    assert parse_request(text, NOW, ZoneInfo(ZONES[0])) is None


def test_a_time_past_today_means_tomorrow_and_says_so() -> None:
    got = parse_request("remind me at 7:30am to take the medicine", NOW, ZoneInfo("Europe/Berlin"))
    assert isinstance(got, Parsed)
    assert any("passed today" in note for note in got.notes)


def test_an_hour_without_am_pm_is_stated() -> None:
    got = parse_request("remind me at 9 to call mum", NOW, ZoneInfo("Europe/Berlin"))
    assert isinstance(got, Parsed)
    assert any("21:00" in note for note in got.notes)
    asked = parse_request("remind me at 5 to feed the dog", NOW, ZoneInfo("Europe/Berlin"))
    assert isinstance(asked, Clarify)
    assert asked.question == "5 in the morning or in the evening?"


def test_recurring_keeps_wall_clock_across_dst_new_york() -> None:
    # New York goes from EST (-5) to EDT (-4) on Sunday 2026-03-08
    zone = ZoneInfo("America/New_York")
    got = parse_request("remind me every day at 8am to take my vitamins", NOW, zone)
    assert isinstance(got, Parsed) and got.schedule == "every day at 08:00"
    fires = [got.due]
    for _ in range(3):
        fires.append(next_fire(got.schedule, zone, fires[-1], previous=fires[-1]))
    assert [f.astimezone(zone).strftime("%m-%d %H:%M") for f in fires] == [
        "03-07 08:00",
        "03-08 08:00",
        "03-09 08:00",
        "03-10 08:00",
    ]
    assert fires[1] - fires[0] == timedelta(hours=23)  # over the short night


def test_recurring_keeps_wall_clock_across_dst_berlin_autumn() -> None:
    # Berlin goes from CEST (+2) to CET (+1) on Sunday 2026-10-25
    zone = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 10, 22, 12, 0, tzinfo=zone)
    got = parse_request("remind me every other day at 9 to water the cactus", start, zone)
    assert isinstance(got, Parsed) and got.schedule == "every other day at 09:00"
    second = next_fire(got.schedule, zone, got.due, previous=got.due)
    third = next_fire(got.schedule, zone, second, previous=second)
    assert [f.astimezone(zone).strftime("%m-%d %H:%M") for f in (got.due, second, third)] == [
        "10-23 09:00",
        "10-25 09:00",
        "10-27 09:00",
    ]
    weekly = parse_request("set an alarm for 6:45 on weekdays", start, zone)
    assert isinstance(weekly, Parsed) and weekly.schedule == "every weekday at 06:45"
    after = next_fire(weekly.schedule, zone, datetime(2026, 10, 24, 12, 0, tzinfo=zone))
    assert after.astimezone(zone).strftime("%a %m-%d %H:%M") == "Mon 10-26 06:45"


def test_a_one_off_across_dst_keeps_the_wall_time() -> None:
    zone = ZoneInfo("America/New_York")
    got = parse_request("remind me in 3 days to renew the parking permit", NOW, zone)
    assert isinstance(got, Parsed)
    assert got.due - NOW == timedelta(days=3, hours=-1)  # 11:20 EST -> 11:20 EDT
