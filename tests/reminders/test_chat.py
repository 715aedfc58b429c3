"""Reminders in chat, answered by the rules layer's reminders collaborator (never the model)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from assistant.chat.personas import PersonaBook
from assistant.chat.rules import ChatRules
from assistant.notify.outbox import Outbox
from assistant.notify.service import Notifier
from assistant.reminders.chat import ReminderChat
from assistant.reminders.service import ReminderService
from assistant.reminders.store import ReminderStore
from tests.fakes import FixedClock

NOW = datetime(2026, 3, 6, 16, 20, tzinfo=UTC)  # Friday 17:20 in Berlin


def make(tmp_path: Path) -> tuple[ReminderChat, ReminderService, FixedClock]:
    clock = FixedClock(NOW)
    notifier = Notifier(Outbox(tmp_path / "n.sqlite3"), clock)
    service = ReminderService(
        ReminderStore(tmp_path / "r.sqlite3"), notifier, clock, ZoneInfo("Europe/Berlin")
    )
    return ReminderChat(service), service, clock


def test_the_whole_conversation(tmp_path: Path) -> None:
    chat, service, clock = make(tmp_path)
    say = lambda text: chat.answer(text, conversation_id="c1")  # noqa: E731
    assert say("remind me in 20 minutes to take the pasta out") == (
        "I'll remind you to take the pasta out at 17:40 today, in 20 minutes."
    )
    assert (
        say("set a pasta timer for 8 minutes") == "Pasta timer set for 8 minutes: it goes off at 17:28 today."
    )
    assert say("remind me on Friday at 8am to pay rent") == (
        "I'll remind you to pay rent at 08:00 on Friday 13 March, in 6 days 14 hours. "
        "(08:00 has already passed today, so next Friday.)"
    )
    assert say("remind me tomorrow at 9 to call mum") == (
        "I'll remind you to call mum at 09:00 tomorrow, in 15 hours 40 minutes. "
        "(I took 9 as 09:00 in the morning.)"
    )
    listing = say("what reminders do I have?")
    assert listing is not None and listing.startswith("You have 4:")
    assert "pasta timer: 17:28 today (in 8 minutes)" in listing
    assert say("how long is left on the pasta timer?") == (
        "8 minutes left on the pasta timer (it goes off at 17:28 today)."
    )
    assert (
        say("cancel the rent reminder")
        == "Cancelled the reminder to pay rent (it was set for 08:00 on Friday 13 March)."
    )
    assert say("move the call mum reminder to 10") == (
        "Moved the reminder to call mum to 10:00 tomorrow, in 16 hours 40 minutes. (I took 10 as 10:00 in the morning.)"
    )
    clock.advance(minutes=8)
    service.fire_due()
    assert say("snooze 10 minutes") == "Snoozed: the pasta timer again at 17:38 today, in 10 minutes."
    assert len(service.reminders()) == 3


def test_a_question_then_its_answer(tmp_path: Path) -> None:
    chat, service, _ = make(tmp_path)
    assert (
        chat.answer("remind me at 5 to feed the dog", conversation_id="c")
        == "5 in the morning or in the evening?"
    )
    assert service.reminders() == []
    answer = chat.answer("in the morning", conversation_id="c")
    assert (
        answer
        == "I'll remind you to feed the dog at 05:00 tomorrow, in 11 hours 40 minutes. (05:00 has already passed today, so tomorrow.)"
    )


def test_other_text_passes(tmp_path: Path) -> None:
    chat, _, _ = make(tmp_path)
    for text in (
        "what time is it?",
        "remember that my locker is 42",
        "tell me about alarm clocks",
        "/digest",
        "how much time is left until Christmas?",
        "how long is left?",  # nothing is running: a question for the model
    ):
        assert chat.answer(text, conversation_id="c") is None
    chat.answer("set a timer for 5 minutes", conversation_id="c")
    assert chat.answer("how long is left?", conversation_id="c") == (
        "5 minutes left on the timer (it goes off at 17:25 today)."
    )


def test_cancelling_what_is_not_there_says_so(tmp_path: Path) -> None:
    chat, _, _ = make(tmp_path)
    assert (
        chat.answer("cancel the rent reminder", conversation_id="c")
        == "I have no pending reminder matching 'rent reminder'."
    )
    assert chat.answer("snooze", conversation_id="c") == "Nothing has gone off yet to snooze."


def test_the_rules_layer_answers_reminders(tmp_path: Path) -> None:
    chat, service, _ = make(tmp_path)
    rules = ChatRules(PersonaBook.from_config({}), None, reminders=chat)
    got = rules.answer("set a timer for 10 minutes", conversation_id="c", persona="default")
    assert (
        got is not None
        and got.text == "Timer set for 10 minutes: it goes off at 17:30 today."
        and not got.untrusted
    )
    assert rules.answer("hello there", conversation_id="c", persona="default") is None
    assert len(service.reminders()) == 1
