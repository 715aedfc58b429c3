"""Reading the next prompt ahead (issue 28): after a client's turn whose question had recalled memories put
in front of it, the orchestrator has the model evaluate the start of the conversation's next prompt (the
system message and the stored turns, the question bare) while the user reads, so the next turn evaluates
only its own message."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from assistant.chat.conversations import ConversationStore
from assistant.chat.orchestrator import ChatService
from assistant.chat.turn import TurnEnd, TurnRequest
from assistant.core.recall import Recall, TurnRecord
from assistant.llm.types import ChatMessage, GenerationParams
from assistant.llm.worker import GenerationWorker
from tests.fakes import FakeLLM, FixedClock

PARAMS = GenerationParams(max_tokens=32, temperature=0)
BLOCK = "## Notes\n- [7 Dec 2026, a note] The bike is a green Brompton."


class StatefulLLM(FakeLLM):
    """A fake model that, like the embedded llama.cpp backend, keeps prompt states (``cache``)."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.cache = object()


class Recalls:
    def __init__(self, block: str | None) -> None:
        self.block = block

    def recall(self, query: str, *, conversation_id: str, exclude_texts: Sequence[str]) -> Recall:
        return Recall(
            self.block, [{"id": "mem-1", "text": "The bike is a green Brompton."}] if self.block else []
        )

    def remember_turns(self, conversation_id: str, turns: Sequence[TurnRecord], at: Any) -> None:
        pass


def _chat(tmp_path: Path, llm: FakeLLM, block: str | None = BLOCK) -> ChatService:
    worker = GenerationWorker(llm)
    worker.start()
    return ChatService(worker, ConversationStore(tmp_path / "c.db"), FixedClock(), memory=Recalls(block))


async def _turn(chat: ChatService, text: str) -> tuple[str, TurnEnd]:
    turn = await chat.begin(TurnRequest([ChatMessage("user", text)], PARAMS))
    events = [e async for e in turn.stream()]
    assert isinstance(events[-1], TurnEnd)
    return turn.conversation_id, events[-1]


def test_after_a_turn_with_recall_the_next_prompts_start_is_evaluated_for_the_conversation(
    tmp_path: Path,
) -> None:
    llm = StatefulLLM("It is green.")
    chat = _chat(tmp_path, llm)
    try:
        cid, _ = asyncio.run(_turn(chat, "What colour is my bike?"))
        assert chat.reading_ahead is not None
        chat.reading_ahead.join(timeout=30)
        asked, ahead = llm.prompts
        assert asked[-1].content.startswith(BLOCK)  # the question as this turn's model saw it
        assert [(m.role, m.content) for m in ahead[1:]] == [
            ("user", "What colour is my bike?"),  # bare, as the next turn's prompt will hold it
            ("assistant", "It is green."),
        ]
        assert ahead[0] == asked[0]  # the same system message
        ahead_params = llm.params[1]
        assert (ahead_params.max_tokens, ahead_params.state_group, ahead_params.background) == (1, cid, True)
        # the next turn's prompt begins with exactly what was read ahead
        following = chat.prepare(TurnRequest([ChatMessage("user", "And my cat?")], PARAMS, cid))
        assert following.messages[: len(ahead)] == ahead
    finally:
        chat.worker.close()


@pytest.mark.parametrize(
    ("keeps_states", "recalled"),
    [(True, False), (False, True)],
    ids=["nothing-put-in-front-of-the-question", "a-backend-that-keeps-no-prompt-states"],
)
def test_nothing_is_read_ahead(tmp_path: Path, keeps_states: bool, recalled: bool) -> None:
    llm = StatefulLLM("It is green.") if keeps_states else FakeLLM("It is green.")
    chat = _chat(tmp_path, llm) if recalled else _chat(tmp_path, llm, block=None)
    try:
        asyncio.run(_turn(chat, "What colour is my bike?"))
        assert chat.reading_ahead is None and len(llm.prompts) == 1
    finally:
        chat.worker.close()


def test_a_turn_of_an_evaluation_or_the_cli_is_not_read_ahead(tmp_path: Path) -> None:
    llm = StatefulLLM("It is green.")
    chat = _chat(tmp_path, llm)
    try:
        chat.reply(TurnRequest([ChatMessage("user", "What colour is my bike?")], PARAMS))
        assert chat.reading_ahead is None and len(llm.prompts) == 1
    finally:
        chat.worker.close()
