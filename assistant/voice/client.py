"""The voice loop: listen -> transcribe -> ask the daemon -> speak; and speak notifications as they arrive."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from assistant.notify.models import Notification
from assistant.voice.audio import Audio, VoiceError
from assistant.voice.phrases import SkillItem, skill_for
from assistant.voice.spoken import for_the_ear
from assistant.voice.stt import SpeechToText, Transcript
from assistant.voice.tts import TextToSpeech

if TYPE_CHECKING:
    from assistant.client.daemon import DaemonClient

log = logging.getLogger(__name__)

Speaker = Callable[[Audio], None]

# Commands the voice front end answers itself, without a round trip to the model.
NEW_CONVERSATION = {"new conversation"}
REPEAT = {"repeat that", "say that again"}
SILENCE = {"stop", "cancel"}


@dataclass(frozen=True)
class Turn:
    transcript: Transcript
    answer: str
    speech: Audio | None


def notification_text(n: Notification) -> str:
    head = "Urgent notification" if n.urgent else "Notification"
    parts = [p.strip().rstrip(".") for p in (n.title, n.body) if p.strip()]
    return f"{head}: " + ". ".join(parts) + "." if parts else head + "."


class VoiceAssistant:
    """One voice session. ``speaker`` plays or writes audio; only one thing is spoken at a time."""

    def __init__(
        self,
        stt: SpeechToText,
        tts: TextToSpeech,
        daemon: DaemonClient,
        speaker: Speaker,
        *,
        out: TextIO | None = None,
        skills: Sequence[SkillItem] = (),
        max_tokens: int | None = 200,
    ) -> None:
        self.stt = stt
        self.tts = tts
        self.daemon = daemon
        self.speaker = speaker
        self.out = out
        self.skills = skills  # GET /api/skills items: their declared phrases pick the skill to run
        self.max_tokens = max_tokens  # the longest spoken answer to ask the daemon for
        self._speaking = threading.Lock()
        self._last_answer = ""
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None
        self.spoken_notifications: list[Notification] = []

    def _print(self, line: str) -> None:
        if self.out is not None:
            print(line, file=self.out, flush=True)

    def say(self, text: str) -> Audio | None:
        """Speak ``text`` (an answer, a notification) made for the ear first: no Markdown, no URLs read out."""
        text = for_the_ear(text)
        if not text:
            return None
        audio = self.tts.synthesize(text)
        with self._speaking:
            self.speaker(audio)
        return audio

    def answer_text(self, text: str) -> str:
        """The daemon's answer to ``text``, or a local one for the few voice-control commands."""
        if text in NEW_CONVERSATION:
            self.daemon.new_conversation()
            return "Starting a new conversation."
        if text in REPEAT:
            return self._last_answer or "I have not said anything yet."
        if text in SILENCE:
            return ""
        skill = skill_for(text, self.skills)
        return self.daemon.ask(f"/{skill}" if skill else text, max_tokens=self.max_tokens)

    def turn(self, audio: Audio) -> Turn:
        transcript = self.stt.transcribe(audio)
        if not transcript:
            self._print("you: (nothing recognised)")
            return Turn(transcript, "", None)
        skill = skill_for(transcript.text, self.skills) if transcript.source == "grammar" else None
        self._print(f"you: {transcript.text}   [{transcript.source}{' -> /' + skill if skill else ''}]")
        answer = self.answer_text(transcript.text)
        self._print(f"assistant: {answer}")
        speech = self.say(answer)
        if answer and transcript.text not in REPEAT:
            self._last_answer = answer
        return Turn(transcript, answer, speech)

    # notifications -------------------------------------------------------------------------------------

    def speak_notification(self, n: Notification) -> None:
        text = notification_text(n)
        self._print(f"notification: {text}")
        try:
            self.say(text)
        except VoiceError as exc:
            log.warning("could not speak a notification: %s", exc.message)
        self.spoken_notifications.append(n)

    def start_notifications(self) -> None:
        """Speak notifications from the daemon's stream, in a background thread, until :meth:`close`."""

        def run() -> None:
            for n in self.daemon.notifications(self._stop):
                self.speak_notification(n)

        self._listener = threading.Thread(target=run, name="voice-notifications", daemon=True)
        self._listener.start()

    def close(self) -> None:
        """Stop speaking notifications. The listener thread (a daemon thread) ends at the stream's next
        event or keep-alive ping; nothing waits for it."""
        self._stop.set()
