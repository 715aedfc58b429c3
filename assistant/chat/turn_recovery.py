"""At start: chat turns whose conversation commit landed but whose memory copy did not are remembered.

The orchestrator stores a turn pending (``ConversationStore.append(remember=True)``) in the transaction that
commits it and unmarks it once memory has it. A daemon killed between the two leaves it pending; so does a
memory failure. ``remember_pending_turns`` gives those turns to memory with the provenance they were stored
with, skipping any whose copy did land (killed after the memory add, before the unmarking), then unmarks
them. A memory the user deleted is never brought back: only turns still pending are looked at.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from itertools import groupby

from assistant.chat.conversations import ConversationStore, Turn
from assistant.chat.orchestrator import MemoryHook
from assistant.core.recall import CONVERSATION, UNTRUSTED, USER, Provenance, TurnRecord

log = logging.getLogger(__name__)


def turn_provenance(turn: Turn) -> Provenance:
    """As the orchestrator gave it: the user's words are ``user``; anything else ``conversation``, or
    ``untrusted`` when the turn was stored as derived from untrusted text."""
    if turn.untrusted:
        return UNTRUSTED
    return USER if turn.role == "user" else CONVERSATION


def remember_pending_turns(
    conversations: ConversationStore,
    memory: MemoryHook,
    remembered: Callable[[str], set[tuple[str, str]]],
) -> int:
    """Give memory the pending turns; returns how many it was given. ``remembered(conversation_id)`` is the
    (role, text) of the conversation's turns memory already holds. A memory failure leaves the rest
    pending for the next start."""
    given = 0
    while batch := conversations.pending_memory(500):
        for conversation_id, items in groupby(batch, key=lambda item: item[0]):
            turns = [turn for _, turn in items]
            have = remembered(conversation_id)
            missing = [t for t in turns if not _held(t, have)]
            try:
                for stamp, same_time in groupby(missing, key=lambda t: t.created_at):
                    records = [TurnRecord(t.role, t.content, turn_provenance(t)) for t in same_time]
                    memory.remember_turns(conversation_id, records, datetime.fromisoformat(stamp))
            except Exception:  # noqa: BLE001 - a start must not fail on memory; try again next start
                log.exception("remembering the chat turns of %s that memory missed failed", conversation_id)
                return given
            conversations.memory_done([t.id for t in turns])
            given += len(missing)
    if given:
        log.info("memory was given %d chat turn(s) it missed (the daemon stopped before they were copied)", given)
    return given


def _held(turn: Turn, have: set[tuple[str, str]]) -> bool:
    """Memory holds the turn (a long one cut to memory's limit counts too)."""
    return (turn.role, turn.content) in have or any(
        role == turn.role and text and turn.content.startswith(text) for role, text in have
    )
