"""The chat orchestrator: history -> shortcut (skills) -> recall memories -> prompt -> model -> store the turn.

Routes call ``prepare`` then stream ``start(prepared)`` and finally ``finish``. Memory and skills are
optional services that plug in through the two small protocols below.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from assistant.chat.conversations import ConversationStore, check_conversation_id, new_conversation_id
from assistant.core.clock import Clock
from assistant.core.errors import BadRequest
from assistant.core.recall import Recall
from assistant.llm.types import ChatMessage, GenerationParams, Usage
from assistant.llm.worker import GenerationWorker, Job

log = logging.getLogger(__name__)

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful personal assistant running privately on the user's own device. "
    "Answer briefly and plainly."
)


class MemoryHook(Protocol):
    def recall(self, query: str, *, conversation_id: str, exclude_texts: Sequence[str]) -> Recall:
        """Memories relevant to ``query``, never the turns already in the prompt (``exclude_texts``)."""
        ...

    def remember_turns(self, conversation_id: str, turns: Sequence[tuple[str, str]], at: Any) -> None:
        """Store (role, text) chat turns as memories."""
        ...


class ShortcutHook(Protocol):
    def answer(self, text: str, *, conversation_id: str) -> str | None:
        """Answer a slash command or a cheap-rule question without the model, or None to pass."""
        ...


@dataclass
class Prepared:
    conversation_id: str
    messages: list[ChatMessage]
    params: GenerationParams
    new_turns: list[tuple[str, str]]
    recall: Recall = field(default_factory=Recall)
    shortcut: str | None = None


class ChatService:
    def __init__(
        self,
        worker: GenerationWorker,
        conversations: ConversationStore,
        clock: Clock,
        *,
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        memory: MemoryHook | None = None,
        shortcuts: ShortcutHook | None = None,
    ) -> None:
        self.worker = worker
        self.conversations = conversations
        self.clock = clock
        self.system_prompt = system_prompt
        self.memory = memory
        self.shortcuts = shortcuts

    def prepare(
        self, messages: list[ChatMessage], params: GenerationParams, conversation_id: str | None
    ) -> Prepared:
        """Build the prompt. With a conversation id, the stored turns come first and the request's
        messages are the new ones; without, the request holds the whole history and a new id is made."""
        if not messages:
            raise BadRequest("messages must hold at least one message", code="empty_messages")
        if messages[-1].role != "user":
            raise BadRequest("the last message must have role 'user'", code="last_not_user")
        system = [m for m in messages if m.role == "system"]
        rest = [m for m in messages if m.role != "system"]
        if conversation_id:
            check_conversation_id(conversation_id)
            history = [ChatMessage(t.role, t.content) for t in self.conversations.turns(conversation_id)]  # type: ignore[arg-type]
        else:
            conversation_id = new_conversation_id()
            history = []
        new_turns: list[tuple[str, str]] = [(m.role, m.content) for m in rest]
        dialogue = history + rest
        query = messages[-1].content

        shortcut = self.shortcuts.answer(query, conversation_id=conversation_id) if self.shortcuts else None

        recall = Recall()
        if self.memory is not None and shortcut is None:
            try:
                recall = self.memory.recall(
                    query, conversation_id=conversation_id, exclude_texts=[m.content for m in dialogue]
                )
            except Exception:  # noqa: BLE001 - memory trouble must not stop the chat
                log.exception("memory recall failed; answering without it")

        system_text = "\n\n".join(m.content for m in system) if system else self.system_prompt
        if recall.block:
            system_text = f"{system_text}\n\n{recall.block}"
        prompt = [ChatMessage("system", system_text), *dialogue]
        return Prepared(conversation_id, prompt, params, new_turns, recall, shortcut)

    def start(self, prepared: Prepared) -> Job:
        return self.worker.submit(prepared.messages, prepared.params)

    def finish(self, prepared: Prepared, answer: str, usage: Usage | None = None) -> None:
        """Store the new turns and the answer (after the answer is complete)."""
        turns = [*prepared.new_turns, ("assistant", answer)]
        now = self.clock.now()
        self.conversations.append(prepared.conversation_id, turns, now)
        if self.memory is not None:
            try:
                self.memory.remember_turns(prepared.conversation_id, turns, now)
            except Exception:  # noqa: BLE001 - the turn is in SQLite; memory can be rebuilt from it
                log.exception("storing the turn in memory failed")
