"""One chat turn, from the moment its prompt is known to the moment its answer is stored.

``ChatService.begin`` (assistant.chat.orchestrator) decides everything a turn needs before the first byte
(the conversation, the persona, a rule's or a skill's answer, the recalled memories, the prompt) and, when
the model answers, queues the generation job, so a full queue is a clean 429. The ``ChatTurn`` it returns
delivers the answer either way a caller wants it: ``stream()`` yields the text as it comes and then one
``TurnEnd``; ``complete()`` waits for the whole answer. Either stores the turn once the answer is whole,
and never stores a turn that was cancelled or whose listener went away.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import anyio

from assistant.core.errors import BadRequest
from assistant.core.recall import CONVERSATION, Provenance, Recall, TurnRecord
from assistant.llm.types import ChatMessage, FinishReason, GenerationParams, Usage
from assistant.llm.worker import Job


@dataclass(frozen=True)
class TurnRequest:
    """What a caller asks of a chat turn: the request's messages (with a conversation id, only the new
    ones; without, the whole history), the sampling, the persona from this turn on, the sampling fields the
    caller set itself (a persona's apply to the others), and whether the turn goes into memory."""

    messages: list[ChatMessage]
    params: GenerationParams
    conversation_id: str | None = None
    persona: str | None = None
    explicit: Collection[str] = ()
    remember: bool = True
    skill_choice: bool = True  # the model may choose one of the daemon's skills (assistant.skillkit.skill_choice)


@dataclass
class Prepared:
    """What ``prepare`` decided for a turn: the prompt, the turns to store, and a ready answer if any."""

    conversation_id: str
    messages: list[ChatMessage]
    params: GenerationParams
    new_turns: list[TurnRecord]  # the request's new messages, each with its provenance
    recall: Recall = field(default_factory=Recall)
    shortcut: str | None = None
    provenance: Provenance = CONVERSATION  # of the answer: untrusted when derived from untrusted text
    persona: str | None = None  # the conversation's persona (None: the default)
    remember: bool = True  # store the turns in memory (a rule's exchange is not)
    turn_id: int | None = None  # the stored answer's id, once finished


@dataclass(frozen=True)
class TurnEnd:
    """A whole answer, stored: its text, why it ended, what it cost and its turn id (for feedback)."""

    text: str
    finish_reason: FinishReason
    usage: Usage
    turn_id: int


StoreTurn = Callable[[Prepared, str, Usage], int]


class ChatTurn:
    """A begun chat turn: known conversation, persona and recall; the answer still to be delivered."""

    def __init__(self, prepared: Prepared, job: Job | None, store: StoreTurn) -> None:
        self._prepared = prepared
        self._job = job
        self._store = store

    @property
    def conversation_id(self) -> str:
        return self._prepared.conversation_id

    @property
    def persona(self) -> str | None:
        return self._prepared.persona

    @property
    def recalled(self) -> list[dict[str, Any]]:
        """The memories recalled into the prompt, as shown to the client."""
        return self._prepared.recall.items

    @property
    def prepared(self) -> Prepared:
        return self._prepared

    def cancel(self) -> None:
        """Stop the model (nothing is stored)."""
        if self._job is not None:
            self._job.cancel.set()

    async def _finish(self, text: str, finish: FinishReason, usage: Usage | None) -> TurnEnd:
        used = usage or Usage()
        turn_id = await anyio.to_thread.run_sync(self._store, self._prepared, text, used)
        return TurnEnd(text, finish, used, turn_id)

    async def stream(self) -> AsyncIterator[str | TurnEnd]:
        """The answer's text pieces as they come, then one ``TurnEnd`` once the turn is stored. Ends with
        no ``TurnEnd`` when the generation was cancelled (nothing stored); errors of the model pass through."""
        if self._job is None:
            text = self._prepared.shortcut or ""
            yield text
            yield await self._finish(text, "stop", Usage())
            return
        parts: list[str] = []
        finish: FinishReason | None = None
        usage: Usage | None = None
        async for delta in self._job:
            if delta.text:
                parts.append(delta.text)
                yield delta.text
            if delta.finish_reason:
                finish, usage = delta.finish_reason, delta.usage
        if finish is None or finish == "cancelled":
            return
        yield await self._finish("".join(parts), finish, usage)

    async def complete(self, gone: Callable[[], Awaitable[bool]] | None = None) -> TurnEnd | None:
        """The whole answer, stored. ``gone`` is polled while the model works; when it says the listener
        went away the generation stops and None is returned (nothing stored). A generation cancelled for
        another reason is a BadRequest."""
        if self._job is None:
            return await self._finish(self._prepared.shortcut or "", "stop", Usage())
        job = self._job
        task = asyncio.ensure_future(job.complete())
        while not task.done():
            done, _ = await asyncio.wait({task}, timeout=0.25)
            if not done and gone is not None and await gone():
                job.cancel.set()
                task.cancel()
                return None
        completion = task.result()
        if completion.finish_reason == "cancelled":
            raise BadRequest("generation was cancelled", code="cancelled")
        return await self._finish(completion.text, completion.finish_reason, completion.usage)
