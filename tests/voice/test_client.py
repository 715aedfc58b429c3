"""The voice loop against a real daemon app (fake LLM) served by uvicorn on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from assistant.app import create_app
from assistant.cli import main
from assistant.client.daemon import DaemonClient, DaemonError, DaemonUnreachable
from assistant.config import Settings, load_settings
from assistant.llm.types import ChatMessage
from assistant.notify.models import Notification
from assistant.services import build_services
from assistant.voice.audio import Audio, read_wav
from assistant.voice.client import VoiceAssistant, notification_text
from assistant.voice.stt import Transcript
from tests.daemon import free_port
from tests.fakes import FakeLLM, FixedClock
from tests.voice_support import need_pocketsphinx, serve, speak_to_wav


def echo(messages: list[ChatMessage]) -> str:
    return f"You said: {messages[-1].content}"


def make_settings(tmp_path: Path, **server: object) -> Settings:
    return load_settings(
        None,
        data_dir=tmp_path / "data",
        memory={"enabled": False},
        scheduler={"enabled": False},
        notify={"desktop": False},
        server=server,
    )


@pytest.fixture
def fake_llm() -> FakeLLM:
    return FakeLLM(echo)


@pytest.fixture
def daemon_url(tmp_path: Path, fake_llm: FakeLLM) -> Iterator[str]:
    services = build_services(make_settings(tmp_path), clock=FixedClock(), llm=fake_llm)
    with serve(create_app(services)) as url:
        yield url


class FakeSTT:
    def __init__(self, *texts: str) -> None:
        self.texts = list(texts)

    def transcribe(self, audio: Audio) -> Transcript:
        text = self.texts.pop(0)
        return Transcript(text, "grammar" if text else "none")


class FakeTTS:
    def __init__(self) -> None:
        self.spoken: list[str] = []

    def synthesize(self, text: str) -> Audio:
        self.spoken.append(text)
        return Audio(np.full(160 * len(text), 1000, dtype=np.int16), 16000)


def test_notification_text() -> None:
    n = Notification.from_json({"id": 1, "title": "Digest ready", "body": "Three new headlines.", "urgent": True})
    assert notification_text(n) == "Urgent notification: Digest ready. Three new headlines."
    assert notification_text(Notification.from_json({"id": 2, "title": "Hello"})) == "Notification: Hello."


def test_ask_keeps_the_conversation_across_turns(daemon_url: str, fake_llm: FakeLLM) -> None:
    client = DaemonClient(daemon_url)
    assert client.ask("my name is Ada") == "You said: my name is Ada"
    first_id = client.conversation_id
    assert first_id
    assert client.ask("what is my name") == "You said: what is my name"
    assert client.conversation_id == first_id
    assert "my name is Ada" in [m.content for m in fake_llm.prompts[-1]]  # the daemon kept the history
    client.new_conversation()
    client.ask("hello again")
    assert client.conversation_id != first_id
    assert "my name is Ada" not in [m.content for m in fake_llm.prompts[-1]]


def test_token_is_sent_and_refusals_are_clear(tmp_path: Path, fake_llm: FakeLLM) -> None:
    services = build_services(make_settings(tmp_path, api_token="s3cret"), clock=FixedClock(), llm=fake_llm)
    with serve(create_app(services)) as url:
        with pytest.raises(DaemonError, match="missing or wrong API token"):
            DaemonClient(url).ask("hi")
        assert DaemonClient(url, token="s3cret").ask("hi") == "You said: hi"


def test_unreachable_daemon_is_a_clear_error() -> None:
    with pytest.raises(DaemonUnreachable, match="the daemon is not running at"):
        DaemonClient(f"http://127.0.0.1:{free_port()}").ask("hi")


def test_a_turn_transcribes_asks_and_speaks(daemon_url: str) -> None:
    tts, played = FakeTTS(), []
    va = VoiceAssistant(
        FakeSTT("tell me a joke", "repeat that", "new conversation", "stop", ""), tts, DaemonClient(daemon_url),
        played.append,
    )
    silence = Audio(np.zeros(16000, dtype=np.int16), 16000)
    turn = va.turn(silence)
    assert (turn.transcript.text, turn.answer) == ("tell me a joke", "You said: tell me a joke")
    assert turn.speech is played[0] and tts.spoken == ["You said: tell me a joke."]
    assert va.turn(silence).answer == "You said: tell me a joke"  # repeated locally
    conv = va.daemon.conversation_id
    assert va.turn(silence).answer == "Starting a new conversation." and va.daemon.conversation_id is None
    assert conv
    stop = va.turn(silence)
    assert stop.answer == "" and stop.speech is None
    assert not va.turn(silence).transcript
    assert len(played) == 3


def test_skill_commands_run_the_skill(daemon_url: str, fake_llm: FakeLLM) -> None:
    client = DaemonClient(daemon_url)
    skills = client.skills()
    assert {"time", "digest"} <= {s["name"] for s in skills}
    va = VoiceAssistant(FakeSTT("what day is it"), FakeTTS(), client, lambda a: None, skills=skills)
    turn = va.turn(Audio(np.zeros(1600, dtype=np.int16), 16000))
    assert "15 January 2026" in turn.answer  # the time skill read the daemon's clock; the text never reached the model
    assert all("what day is it" not in m.content for p in fake_llm.prompts for m in p)


def test_notifications_are_spoken_as_they_arrive(daemon_url: str) -> None:
    tts = FakeTTS()
    heard = threading.Event()
    played: list[Audio] = []

    def speaker(a: Audio) -> None:
        played.append(a)
        heard.set()

    va = VoiceAssistant(FakeSTT(), tts, DaemonClient(daemon_url), speaker)
    va.start_notifications()
    try:
        # post until the stream (connecting in the background) has delivered one; each post is a new event
        for _ in range(50):
            r = httpx.post(daemon_url + "/api/notifications", json={"title": "Tea is ready", "body": "Green tea."})
            assert r.status_code == 201
            if heard.wait(0.2):
                break
        assert heard.is_set()
        assert tts.spoken[0] == "Notification: Tea is ready. Green tea."
        assert va.spoken_notifications[0].title == "Tea is ready"
    finally:
        va.close()


def test_cli_voice_input_file_to_output_file(
    daemon_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    need_pocketsphinx()
    question = speak_to_wav("tell me a joke", tmp_path / "q.wav")
    answer = tmp_path / "a.wav"
    rc = main(["voice", "--input", str(question), "--output", str(answer), "--url", daemon_url])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "you: tell me a joke   [grammar]" in out
    assert "assistant: You said: tell me a joke" in out
    spoken = read_wav(answer)
    assert 1.0 < spoken.duration < 5.0 and spoken.rms() > 500


def test_cli_reports_a_missing_daemon(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    need_pocketsphinx()
    question = speak_to_wav("tell me a joke", tmp_path / "q.wav")
    rc = main(["voice", "--input", str(question), "--url", f"http://127.0.0.1:{free_port()}"])
    assert rc == 2
    assert "the daemon is not running at" in capsys.readouterr().err


def test_cli_transcribe_only_needs_no_daemon(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    need_pocketsphinx()
    question = speak_to_wav("give me the digest", tmp_path / "q.wav")
    rc = main(["voice", "--input", str(question), "--transcribe-only", "--url", f"http://127.0.0.1:{free_port()}"])
    assert rc == 0
    assert "you: give me the digest   [grammar]" in capsys.readouterr().out


def test_answers_and_notifications_are_spoken_for_the_ear() -> None:
    """Markdown and URLs in an answer or a notification never reach the speech engine."""
    class Recording:
        def __init__(self) -> None:
            self.spoken: list[str] = []

        def synthesize(self, text: str) -> Audio:
            self.spoken.append(text)
            return Audio(np.zeros(10, dtype=np.int16), 16000)

    tts = Recording()
    va = VoiceAssistant(None, tts, None, lambda a: None)  # type: ignore[arg-type]
    va.say("## Digest\n- **Rain** at 18:00, see https://weather.example.com/today")
    assert tts.spoken == ["Digest. Rain at six pm, see a link to weather.example.com."]
    va.speak_notification(Notification(id=1, title="Timer", body="`tea` done at 07:05", source="t",
                                       urgent=False, data=None, created_at="2026-12-07T05:00:00Z"))  # fmt: skip
    assert tts.spoken[-1] == "Notification: Timer. tea done at seven oh five am."
