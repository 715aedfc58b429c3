"""Reminders on disk and firing on the injected clock: exactly once across a crash at any step, late ones
marked late, timers and alarms urgent (past quiet hours), cancel racing a firing never both."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from assistant.core.errors import BadRequest
from assistant.notify.outbox import Outbox
from assistant.notify.quiet import QuietHours
from assistant.notify.service import Notifier
from assistant.reminders.parse import Clarify
from assistant.reminders.service import Created, ReminderService
from assistant.reminders.store import CANCELLED, FIRED, PENDING, ReminderStore
from tests.fakes import FixedClock

ZONE = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 3, 6, 16, 20, tzinfo=UTC)  # 17:20 in Berlin


def make(tmp_path: Path, clock: FixedClock, quiet: str | None = None) -> tuple[ReminderService, Notifier]:
    q = QuietHours.parse(quiet, "Europe/Berlin") if quiet else None
    notifier = Notifier(Outbox(tmp_path / "notifications.sqlite3"), clock, quiet=q)
    service = ReminderService(ReminderStore(tmp_path / "reminders.sqlite3"), notifier, clock, ZONE)
    return service, notifier


def sent(notifier: Notifier) -> list[dict[str, object]]:
    return [s.notification.to_json() for s in reversed(notifier.history(500))]


def test_a_reminder_fires_once_on_time(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    service, notifier = make(tmp_path, clock)
    created = service.create_text("remind me in 20 minutes to take the pasta out", source="chat")
    assert isinstance(created, Created)
    assert created.text == "I'll remind you to take the pasta out at 17:40 today, in 20 minutes."
    clock.advance(minutes=19)
    assert service.fire_due() == []
    clock.advance(minutes=1)
    assert [r.id for r in service.fire_due()] == [created.reminder.id]
    assert service.fire_due() == []
    out = sent(notifier)
    assert len(out) == 1 and out[0]["title"] == "Reminder: take the pasta out" and out[0]["urgent"] is False
    assert service.get(created.reminder.id).state == FIRED


def test_it_survives_a_restart_and_fires_late_once(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    service, notifier = make(tmp_path, clock)
    created = service.create_text("set a pasta timer for 8 minutes", source="chat")
    assert isinstance(created, Created)
    service.store.close()
    notifier.close()  # the daemon stops (or is killed: every write was committed)
    clock.advance(minutes=30)
    again, notifier2 = make(tmp_path, clock)
    again.recover()
    fired = again.fire_due()
    assert [r.id for r in fired] == [created.reminder.id]
    out = sent(notifier2)
    assert len(out) == 1 and out[0]["urgent"] is True
    assert "Late by 22 minutes" in str(out[0]["body"])
    assert out[0]["data"]["late_s"] == 22 * 60  # type: ignore[index]


@pytest.mark.parametrize("crash_after", ["claim", "notify"])
def test_a_crash_between_the_steps_neither_loses_nor_doubles(tmp_path: Path, crash_after: str) -> None:
    clock = FixedClock(NOW)
    service, notifier = make(tmp_path, clock)
    created = service.create_text("remind me in 5 minutes to stretch", source="chat")
    assert isinstance(created, Created)
    clock.advance(minutes=5)
    rid = created.reminder.id
    key = service.store.claim(rid, clock.now())  # step 1 committed ...
    assert key is not None
    if crash_after == "notify":
        service._send(service.get(rid), key, clock.now())  # ... step 2 too; then kill -9
    service.store.close()
    notifier.close()
    again, notifier2 = make(tmp_path, clock)
    assert again.recover() == 1
    assert again.fire_due() == []
    assert len(sent(notifier2)) == 1
    assert again.get(rid).state == FIRED


def test_recurring_fires_then_waits_for_its_next_time(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    service, notifier = make(tmp_path, clock)
    created = service.create_text("remind me every day at 8am to take my vitamins", source="chat")
    assert isinstance(created, Created)
    clock.set(datetime(2026, 3, 7, 7, 0, tzinfo=UTC))  # 08:00 Berlin
    assert len(service.fire_due()) == 1
    r = service.get(created.reminder.id)
    assert r.state == PENDING and r.due_at.astimezone(ZONE).strftime("%m-%d %H:%M") == "03-08 08:00"
    clock.set(datetime(2026, 3, 11, 7, 30, tzinfo=UTC))  # down for days: one late notice, then ahead
    assert len(service.fire_due()) == 1
    r = service.get(created.reminder.id)
    assert r.due_at.astimezone(ZONE).strftime("%m-%d %H:%M") == "03-12 08:00"
    assert len(sent(notifier)) == 2


def test_quiet_hours_hold_reminders_but_not_timers_or_alarms(tmp_path: Path) -> None:
    clock = FixedClock(datetime(2026, 3, 6, 22, 0, tzinfo=UTC))  # 23:00 Berlin
    service, notifier = make(tmp_path, clock, quiet="22:00-07:00")
    service.create_text("remind me in 10 minutes to lock the door", source="chat")
    service.create_text("set a timer for 10 minutes", source="chat")
    service.create_text("wake me up in 10 minutes", source="chat")
    clock.advance(minutes=10)
    assert len(service.fire_due()) == 3
    held = {s.notification.title: s.held_until for s in notifier.history()}
    assert held["Reminder: lock the door"] is not None
    assert held["Timer done"] is None and held["Alarm"] is None


def test_a_reminder_set_inside_quiet_hours_on_purpose_passes_them(tmp_path: Path) -> None:
    clock = FixedClock(datetime(2026, 3, 6, 20, 0, tzinfo=UTC))  # 21:00 Berlin, quiet from 22:00
    service, notifier = make(tmp_path, clock, quiet="22:00-07:00")
    service.create_text("remind me at 23:30 to take the bread out", source="chat")
    service.create_text("remind me in 2 hours to water the plants", source="chat")  # 23:00, not on purpose
    clock.set(datetime(2026, 3, 6, 22, 30, tzinfo=UTC))
    assert len(service.fire_due()) == 2
    held = {s.notification.title: s.held_until for s in notifier.history()}
    assert held["Reminder: take the bread out"] is None
    assert held["Reminder: water the plants"] is not None


def test_cancel_and_snooze(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    service, notifier = make(tmp_path, clock)
    rent = service.create_text("remind me on Friday at 8am to pay rent", source="chat")
    assert isinstance(rent, Created)
    assert [r.id for r in service.find("rent")] == [rent.reminder.id]
    assert service.cancel(rent.reminder.id).state == CANCELLED
    pasta = service.create_text("remind me in 1 minute to drain the pasta", source="chat")
    assert isinstance(pasta, Created)
    clock.advance(minutes=1)
    service.fire_due()
    with pytest.raises(BadRequest):
        service.cancel(pasta.reminder.id)  # it already went off: not cancelled
    snoozed = service.snooze(None, 10)
    assert snoozed.id == pasta.reminder.id and snoozed.state == PENDING
    clock.advance(minutes=10)
    assert len(service.fire_due()) == 1
    assert len(sent(notifier)) == 2


def test_cancel_at_the_moment_it_fires_is_never_both(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    service, notifier = make(tmp_path, clock)
    ids = []
    for _ in range(40):
        c = service.create_text("remind me in 1 minute to race", source="chat")
        assert isinstance(c, Created)
        ids.append(c.reminder.id)
    clock.advance(minutes=1)
    cancelled: list[str] = []

    def cancel_all() -> None:
        for rid in reversed(ids):
            try:
                service.cancel(rid)
                cancelled.append(rid)
            except BadRequest:
                pass

    t = threading.Thread(target=cancel_all)
    t.start()
    service.fire_due()
    t.join()
    delivered = {n["data"]["reminder_id"] for n in sent(notifier)}  # type: ignore[index]
    assert not delivered & set(cancelled)
    assert delivered | set(cancelled) == set(ids)
    for rid in ids:
        assert service.get(rid).state == (CANCELLED if rid in cancelled else FIRED)


def test_a_question_sets_nothing(tmp_path: Path) -> None:
    service, _ = make(tmp_path, FixedClock(NOW))
    asked = service.create_text("remind me at 5 to feed the dog", source="chat")
    assert isinstance(asked, Clarify) and asked.question == "5 in the morning or in the evening?"
    assert service.reminders() == []
    with pytest.raises(BadRequest):
        service.create_text("what is the weather", source="api")


def test_fields_and_moving(tmp_path: Path) -> None:
    clock = FixedClock(NOW)
    service, _ = make(tmp_path, clock)
    made = service.create(kind="timer", what="tea", in_seconds=240)
    assert made.text == "Tea timer set for 4 minutes: it goes off at 17:24 today."
    moved = service.move(made.reminder.id, NOW + timedelta(hours=1))
    assert moved.due_at == NOW + timedelta(hours=1)
    assert "tea" in service.describe(moved)
