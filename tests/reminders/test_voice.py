"""Voice: espeak-ng saying "set a timer for ten minutes" through the WAV path (`assistant voice --input`)
sets the timer; the grammar holds the reminder phrases; a fired timer is spoken."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.app import create_app
from assistant.cli import main
from assistant.config import load_settings
from assistant.notify.models import Notification
from assistant.services import build_services
from assistant.voice.client import notification_text
from assistant.voice.phrases import DEFAULT_PHRASES, REMINDER_PHRASES
from tests.fakes import FakeLLM, FixedClock
from tests.voice_support import need_pocketsphinx, serve, speak_to_wav


def test_the_grammar_holds_the_reminder_phrases() -> None:
    assert "set a timer for ten minutes" in DEFAULT_PHRASES
    assert set(REMINDER_PHRASES) <= set(DEFAULT_PHRASES)


def test_a_fired_timer_is_spoken() -> None:
    n = Notification(1, "Timer done: pasta", "The pasta timer (8 minutes) is done.", "reminders", True, None, "")
    assert notification_text(n) == "Urgent notification: Timer done: pasta. The pasta timer (8 minutes) is done."


def test_spoken_timer_request_sets_the_timer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    need_pocketsphinx()
    question = speak_to_wav("set a timer for ten minutes", tmp_path / "q.wav")
    settings = load_settings(None, data_dir=tmp_path / "data", memory={"enabled": False},
                             scheduler={"enabled": False}, notify={"desktop": False})  # fmt: skip
    services = build_services(settings, clock=FixedClock(), llm=FakeLLM("the model was asked"))
    with serve(create_app(services)) as url:
        rc = main(["voice", "--input", str(question), "--output", str(tmp_path / "a.wav"), "--url", url])
        out = capsys.readouterr().out
        assert rc == 0, out
        assert "you: set a timer for ten minutes   [grammar]" in out
        assert "assistant: Timer set for 10 minutes: it goes off at" in out
        assert services.reminders is not None
        [timer] = services.reminders.reminders()
        assert timer.kind == "timer" and timer.duration_s == 600
