"""The `time` skill: the clock gives the time; the model's phrasing is used only when it states it right."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from assistant.config import Settings
from assistant.core.errors import BadRequest
from assistant.services import Services, build_services
from skills.tell_time import phrasing_is_right
from tests.fakes import FakeLLM, FixedClock
from tests.settings_copy import changed

# (UTC instant, zone, expected template pieces) - expected values written out by hand, not computed.
CASES = [
    # Berlin, spring forward 2026-03-29 01:00 UTC: 01:59 CET is followed by 03:00 CEST
    (datetime(2026, 3, 29, 0, 59, tzinfo=UTC), "Europe/Berlin", "1:59 AM (01:59) on Sunday, 29 March 2026", "CET"),
    (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), "Europe/Berlin", "3:00 AM (03:00) on Sunday, 29 March 2026", "CEST"),
    # Berlin, fall back 2026-10-25 01:00 UTC: 02:30 happens twice, first CEST then CET
    (datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "Europe/Berlin", "2:30 AM (02:30) on Sunday, 25 October 2026", "CEST"),
    (datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "Europe/Berlin", "2:30 AM (02:30) on Sunday, 25 October 2026", "CET"),
    # New York, spring forward 2026-03-08 07:00 UTC
    (datetime(2026, 3, 8, 6, 59, tzinfo=UTC), "America/New_York", "1:59 AM (01:59) on Sunday, 8 March 2026", "EST"),
    (datetime(2026, 3, 8, 7, 0, tzinfo=UTC), "America/New_York", "3:00 AM (03:00) on Sunday, 8 March 2026", "EDT"),
    # New York, fall back 2026-11-01 06:00 UTC: 01:30 twice
    (datetime(2026, 11, 1, 5, 30, tzinfo=UTC), "America/New_York", "1:30 AM (01:30) on Sunday, 1 November 2026", "EDT"),
    (datetime(2026, 11, 1, 6, 30, tzinfo=UTC), "America/New_York", "1:30 AM (01:30) on Sunday, 1 November 2026", "EST"),
    # Lord Howe moves its clocks by 30 minutes: 2026-04-05 02:00 (+11) becomes 01:30 (+10:30) at 15:00 UTC
    (datetime(2026, 4, 4, 14, 59, tzinfo=UTC), "Australia/Lord_Howe", "1:59 AM (01:59) on Sunday, 5 April 2026", "+11"),
    (datetime(2026, 4, 4, 15, 0, tzinfo=UTC), "Australia/Lord_Howe", "1:30 AM (01:30) on Sunday, 5 April 2026", "+1030"),
    # odd offsets and the date line
    (datetime(2026, 1, 15, 12, 0, tzinfo=UTC), "Asia/Kathmandu", "5:45 PM (17:45) on Thursday, 15 January 2026", "+0545"),
    (datetime(2026, 1, 15, 12, 0, tzinfo=UTC), "Pacific/Kiritimati", "2:00 AM (02:00) on Friday, 16 January 2026", "+14"),
    (datetime(2026, 1, 15, 12, 0, tzinfo=UTC), "Pacific/Pago_Pago", "1:00 AM (01:00) on Thursday, 15 January 2026", "SST"),
    (datetime(2026, 1, 15, 0, 5, tzinfo=UTC), "UTC", "12:05 AM (00:05) on Thursday, 15 January 2026", "UTC"),
    (datetime(2026, 1, 15, 12, 0, tzinfo=UTC), "UTC", "12:00 PM (12:00) on Thursday, 15 January 2026", "UTC"),
]  # fmt: skip


@pytest.mark.parametrize(("instant", "zone", "expected", "abbr"), CASES)
def test_time_is_right_in_every_zone_and_across_dst(
    services: Services, clock: FixedClock, instant: datetime, zone: str, expected: str, abbr: str
) -> None:
    clock.set(instant)
    result = services.skills.run("time", {"tz": zone, "phrase": False})
    assert expected in result.text
    assert f"{zone} ({abbr})" in result.text or (zone == abbr and zone in result.text)
    assert datetime.fromisoformat(result.data["local_time"]) == instant  # the same instant, shown locally
    assert result.data["abbreviation"] == abbr


def test_the_configured_zone_is_the_default(settings: Settings, clock: FixedClock, fake_llm: FakeLLM) -> None:
    services = build_services(changed(settings, timezone="America/New_York"), clock=clock, llm=fake_llm)
    assert services.skills is not None
    clock.set(datetime(2026, 7, 4, 16, 0, tzinfo=UTC))
    result = services.skills.run("time", {"phrase": False})
    assert "12:00 PM (12:00) on Saturday, 4 July 2026" in result.text and "EDT" in result.text
    # a run with an explicit zone (a schedule's) wins over the configured one
    result = services.skills.run("time", {"phrase": False}, timezone="Asia/Tokyo")
    assert "1:00 AM (01:00) on Sunday, 5 July 2026" in result.text


def test_unknown_zone_is_a_bad_request(services: Services) -> None:
    with pytest.raises(BadRequest, match="unknown timezone 'Mars/Olympus'"):
        services.skills.run("time", {"tz": "Mars/Olympus"})


@pytest.mark.parametrize(
    ("reply", "used"),
    [
        ("It's 1:00 PM on this fine Thursday!", True),
        ("Good afternoon! The clock says 13:00.", True),
        ("It is 1pm, Thursday the 15th of January 2026.", True),
        ("It's 1:00 PM on January 15, 2026.", True),
        ("It's 2:00 PM on Thursday!", False),  # wrong hour
        ("It's 1:05 PM.", False),  # wrong minute
        ("It's 1:00 AM.", False),  # wrong half of the day
        ("It's 1:00.", False),  # 24-hour reading of 1:00 is one in the morning
        ("It's 1:00 PM on Friday.", False),  # wrong weekday
        ("It's 1:00 PM on 16 January.", False),  # wrong day
        ("It's 1:00 PM in February.", False),  # wrong month
        ("It's 1:00 PM in 2025.", False),  # wrong year
        ("It's 1:00 PM, or maybe 2:00 PM.", False),  # a second, wrong time
        ("Have a lovely afternoon!", False),  # no time at all
        ("It's 1:00 PM, see http://example.com", False),  # links are not phrasing
        ("", False),
    ],
)
def test_model_phrasing_is_checked_against_the_clock(
    settings: Settings, clock: FixedClock, fake_llm: FakeLLM, reply: str, used: bool
) -> None:
    fake_llm.reply = reply  # the fixed clock says 2026-01-15 12:00 UTC; Berlin is 13:00 (CET)
    services = build_services(changed(settings, timezone="Europe/Berlin"), clock=clock, llm=fake_llm)
    assert services.skills is not None
    result = services.skills.run("time")
    assert result.data["phrased_by_model"] is used
    if used:
        assert result.text == reply
    else:
        assert (
            result.text == "It's 1:00 PM (13:00) on Thursday, 15 January 2026, time zone Europe/Berlin (CET)."
        )
    prompt = fake_llm.prompts[-1][-1].content
    assert "1:00 PM (13:00)" in prompt  # the model is given the facts, it does not invent them


def test_phrasing_check_table() -> None:
    local = datetime(2026, 5, 3, 0, 7, tzinfo=ZoneInfo("Europe/Paris"))
    assert phrasing_is_right("It's 12:07 AM on Sunday, May 3.", local)
    assert phrasing_is_right("It's 00:07, you may want to sleep.", local)  # "may" the verb is not a month
    assert phrasing_is_right("Just after midnight: 0.07 on the 3rd of May", local)
    assert not phrasing_is_right("It's 12:07 PM.", local)
    assert not phrasing_is_right("It's 12:07.", local)
    assert not phrasing_is_right("It's 00:07 on June 3.", local)
    assert not phrasing_is_right("It's 00:07 on May 4.", local)
    assert not phrasing_is_right("x" * 301 + " 00:07", local)


def test_without_the_model_the_template_is_used(services: Services, fake_llm: FakeLLM) -> None:
    result = services.skills.run("time", {"phrase": "no"})
    assert fake_llm.prompts == []
    assert result.text.startswith("It's 12:00 PM (12:00) on Thursday, 15 January 2026")
