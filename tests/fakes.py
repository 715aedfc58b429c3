"""Fakes for fast unit tests. Every real part these stand in for also has tests against the real thing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from assistant.llm.types import ChatMessage, Delta, GenerationParams, Usage

if TYPE_CHECKING:
    from assistant.notify.models import Notification


class FixedClock:
    """A clock that only moves when told to."""

    def __init__(self, now: datetime | None = None) -> None:
        self._now = now or datetime(2026, 1, 15, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when

    def advance(self, **kwargs: float) -> None:
        self._now += timedelta(**kwargs)


class FakeLLM:
    """Streams a scripted reply word by word. Records every prompt it was given (``prompts``) and the
    generation parameters it came with (``params``).

    ``reply`` may be a string or a function of the messages. ``gate``, when given, holds each token: an Event
    lets all tokens through once set, a Semaphore lets one token through per release. Tests use it to hold
    the worker busy without sleeping.
    """

    name = "fake-model"

    def __init__(self, reply: object = "Hello from the fake model.", gate: threading.Event | threading.Semaphore | None = None) -> None:
        self.reply = reply
        self.gate = gate
        self.prompts: list[list[ChatMessage]] = []
        self.params: list[GenerationParams] = []
        self.started = threading.Event()
        self.cancelled = threading.Event()
        self.closed = False

    def _pass_gate(self) -> bool:
        gate = self.gate
        if isinstance(gate, threading.Event):
            return gate.wait(0.01)
        return bool(gate.acquire(timeout=0.01))  # type: ignore[union-attr]

    def _text(self, messages: list[ChatMessage]) -> str:
        return self.reply(messages) if callable(self.reply) else str(self.reply)

    def stream_chat(
        self, messages: list[ChatMessage], params: GenerationParams, cancel: threading.Event
    ) -> Iterator[Delta]:
        self.prompts.append(list(messages))
        self.params.append(params)
        self.started.set()
        words = self._text(messages).split(" ")
        prompt_tokens = sum(len(m.content.split()) for m in messages)
        n = 0
        for i, word in enumerate(words[: params.max_tokens]):
            if self.gate is not None:
                while not self._pass_gate():
                    if cancel.is_set():
                        break
            if cancel.is_set():
                self.cancelled.set()
                yield Delta("", "cancelled", Usage(prompt_tokens, n))
                return
            n += 1
            yield Delta(word if i == 0 else " " + word)
        finish = "length" if len(words) > params.max_tokens else "stop"
        yield Delta("", finish, Usage(prompt_tokens, n))

    def close(self) -> None:
        self.closed = True



class RecordingNotifier:
    """Stands in for assistant.notify.Notifier: same notify() signature, records every call in ``sent``."""

    def __init__(self, clock: FixedClock | None = None) -> None:
        self.clock = clock or FixedClock()
        self.sent: list[Notification] = []
        self._lock = threading.Lock()

    def notify(
        self, title: str, body: str, *, source: str, urgent: bool = False, data: dict | None = None
    ) -> Notification:
        from assistant.notify.models import Notification

        with self._lock:
            created_at = self.clock.now().isoformat()
            n = Notification(len(self.sent) + 1, title, body, source, urgent, data, created_at)
            self.sent.append(n)
        return n

    def start(self) -> None:  # started and closed with the services, like the real Notifier
        pass

    def close(self) -> None:
        pass
