"""Fakes for fast unit tests. Every real part these stand in for also has tests against the real thing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from assistant.llm import ChatMessage, Delta, GenerationParams, Usage


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
    """Streams a scripted reply word by word. Records every prompt it was given.

    ``reply`` may be a string or a function of the messages. ``gate`` (an Event), when given, makes each
    token wait for it: tests use it to hold the worker busy without sleeping.
    """

    name = "fake-model"

    def __init__(self, reply: object = "Hello from the fake model.", gate: threading.Event | None = None) -> None:
        self.reply = reply
        self.gate = gate
        self.prompts: list[list[ChatMessage]] = []
        self.started = threading.Event()
        self.cancelled = threading.Event()
        self.closed = False

    def _text(self, messages: list[ChatMessage]) -> str:
        return self.reply(messages) if callable(self.reply) else str(self.reply)

    def stream_chat(
        self, messages: list[ChatMessage], params: GenerationParams, cancel: threading.Event
    ) -> Iterator[Delta]:
        self.prompts.append(list(messages))
        self.started.set()
        words = self._text(messages).split(" ")
        prompt_tokens = sum(len(m.content.split()) for m in messages)
        n = 0
        for i, word in enumerate(words[: params.max_tokens]):
            if self.gate is not None:
                while not self.gate.wait(0.01):
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
