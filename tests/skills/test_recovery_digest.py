"""A digest too large for one notification is split into several, not failed on every run forever.

The real scheduler and the real Notifier (outbox on SQLite in tmp, which refuses a body over BODY_MAX);
before the split, such a digest raised on every run, so its items were never marked reported and the same
too-large digest failed again the next day.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.notify.models import BODY_MAX, TITLE_MAX
from assistant.notify.outbox import Outbox
from assistant.notify.service import Notifier
from assistant.notify.split import part_title, split_body
from assistant.services import Services, build_services
from assistant.skillkit.scheduler import SkillScheduler
from tests.fakes import FakeLLM, FixedClock
from tests.skill_fakes import FakeFeeds, entry

LONG_LINK = "https://news1.example/story/{n}?" + "utm=x&" * 400  # a tracking-laden link, ~2,400 characters


@pytest.fixture
def parts(settings: Settings, clock: FixedClock, fake_llm: FakeLLM, tmp_path: Path) -> Services:
    notifier = Notifier(Outbox(tmp_path / "notifications.sqlite3"), clock)
    return build_services(settings, clock=clock, llm=fake_llm, notifier=notifier, feeds=FakeFeeds())


def test_a_digest_larger_than_one_notification_is_split_and_its_items_reported(
    parts: Services, tmp_path: Path
) -> None:
    n = 80
    parts.feeds.add(*(entry(i, f"Headline number {i}", link=LONG_LINK.format(n=i)) for i in range(n)))
    sched = SkillScheduler(parts.skills, tmp_path / "schedules.sqlite3", timezone="UTC")
    try:
        s = sched.add("digest", "every day at 18:00", args={"overview": False, "limit": 500})
        result = sched.run_now(s.id)
        assert len(result.text) > BODY_MAX  # one notification could not hold it
        assert [r.status for r in sched.runs(s.id)] == ["ok"]
        sent = parts.notifier.outbox.history(100, 0)
        notes = sorted((st.notification for st in sent), key=lambda x: x.id)
        assert len(notes) == 2
        assert [x.title for x in notes] == [f"{result.title} (1/2)", f"{result.title} (2/2)"]
        assert all(len(x.body) <= BODY_MAX for x in notes)
        joined = [line for x in notes for line in x.body.split("\n") if line]
        assert joined == [line for line in result.text.split("\n") if line]  # nothing lost, nothing cut
        for i in range(n):  # every item line whole, in exactly one part
            line = f"- Headline number {i} — {LONG_LINK.format(n=i)}"
            assert sum(line in x.body.split("\n") for x in notes) == 1
        assert [x.data["part"] for x in notes if x.data] == [[1, 2], [2, 2]]
        assert parts.feeds.reported["digest"] == {f"k1-{i}" for i in range(n)}
        nothing = sched.run_now(s.id)  # delivered: the next digest has nothing new
        assert nothing.notify is False
    finally:
        sched.shutdown()


def test_a_small_result_stays_one_notification_without_a_part_number(parts: Services, tmp_path: Path) -> None:
    parts.feeds.add(entry(1, "Library opens for cats"))
    sched = SkillScheduler(parts.skills, tmp_path / "schedules.sqlite3", timezone="UTC")
    try:
        s = sched.add("digest", "every day at 18:00", args={"overview": False})
        result = sched.run_now(s.id)
        [status] = parts.notifier.outbox.history(10, 0)
        assert status.notification.title == result.title and status.notification.body == result.text
        assert status.notification.data is not None and "part" not in status.notification.data
    finally:
        sched.shutdown()


def test_split_body_cuts_at_line_ends_and_only_cuts_a_line_longer_than_the_limit() -> None:
    text = "\n".join(["a" * 40, "b" * 40, "", "c" * 40, "d" * 130])
    parts = split_body(text, 100)
    assert all(0 < len(p) <= 100 for p in parts)
    assert parts[0] == "a" * 40 + "\n" + "b" * 40
    assert "".join(parts).replace("\n", "") == text.replace("\n", "")
    assert split_body("short", 100) == ["short"]
    assert split_body("", 100) == [""]


def test_part_title_fits_the_title_limit() -> None:
    assert part_title("Digest", 0, 1) == "Digest"
    assert part_title("Digest", 1, 3) == "Digest (2/3)"
    long = part_title("x" * TITLE_MAX, 0, 2)
    assert len(long) <= TITLE_MAX and long.endswith(" (1/2)")
