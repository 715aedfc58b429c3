"""The rules layer (``assistant.chat.orchestrator.RulesHook``): plain-language rules handled by code before
the skill shortcuts and the model.

- ``remember that ...`` (or ``remember: ...``, ``/remember ...``) stores the rest as the user's note;
- ``forget ...`` (or ``/forget ...``) finds the memories that match and lists them, and deletes them only
  when the next message confirms (``yes``, or ``/forget confirm``). Anything else cancels: nothing is
  deleted without a confirmation right after the list. This works over the plain chat API: the list is an
  answer, the confirmation a follow-up message of the same conversation;
- ``/persona NAME`` chooses the conversation's persona; ``/persona`` lists them;
- reminders, timers and alarms ("remind me in 20 minutes to ...", "what reminders do I have?", "snooze 10
  minutes") go to the reminders collaborator (assistant.reminders.chat) when that part is on.

Only the user's own chat text reaches here (recalled or fetched text never does). A list of matches that
holds untrusted memories (feed items, answers made from them) is itself untrusted: it is quoted through
``clean_text`` and the answer is stored with untrusted provenance.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from assistant.chat.orchestrator import RuleAnswer
from assistant.chat.personas import PersonaBook
from assistant.core.recall import UNTRUSTED, USER
from assistant.core.text import clean_text

if TYPE_CHECKING:
    from memory.service import MemoryService

_REMEMBER = re.compile(
    r"^(?:/remember\b\s*:?|(?:please\s+)?remember(?:\s+that\b|\s*:))\s*(?P<text>\S.*)$", re.I | re.S
)
_FORGET = re.compile(
    r"^(?:/forget\s+|(?:please\s+)?forget(?:\s+(?:that|about|what i said about|the fact that))?\s+)(?P<query>.+)$",
    re.I | re.S,
)
_PERSONA = re.compile(r"^/persona(?:\s+(?P<name>\S+))?\s*$", re.I)
_YES = re.compile(
    r"^(?:/forget\s+confirm|yes|y|yes,?\s+(?:please|delete (?:them|it)|forget (?:them|it))|confirm)[.!]*$",
    re.I,
)
_NO = re.compile(r"^(?:/forget\s+cancel|no|n|cancel|keep (?:them|it))[.!]*$", re.I)
# "forget it" is speech, not a request: a query needs a word that names something.
_VAGUE = {"it", "that", "this", "them", "everything", "all", "about", "me", "you", "the", "a", "an"}
_WORD = re.compile(r"\w+")
MAX_PENDING = 256  # conversations with a list of matches waiting for a confirmation


class ReminderAnswers(Protocol):
    """Reminders, timers and alarms in chat (assistant.reminders.chat.ReminderChat)."""

    def answer(self, text: str, *, conversation_id: str) -> str | None: ...


@dataclass(frozen=True)
class Match:
    id: str
    text: str
    untrusted: bool


class ChatRules:
    def __init__(
        self,
        personas: PersonaBook,
        memory: MemoryService | None = None,
        *,
        max_matches: int = 5,
        min_similarity: float = 0.4,
        reminders: ReminderAnswers | None = None,
    ) -> None:
        self.personas = personas
        self.memory = memory
        self.reminders = reminders
        self.max_matches = max_matches
        self.min_similarity = min_similarity
        self._pending: OrderedDict[str, list[Match]] = OrderedDict()
        self._lock = threading.Lock()

    def answer(self, text: str, *, conversation_id: str, persona: str) -> RuleAnswer | None:
        stripped = text.strip()
        with self._lock:
            pending = self._pending.pop(conversation_id, None)
        if pending is not None:
            if _YES.match(stripped):
                return self._delete(pending)
            if _NO.match(stripped):
                return RuleAnswer("Kept them; nothing was forgotten.")
            # anything else cancels the pending deletion and is answered as usual
        m = _PERSONA.match(stripped)
        if m:
            return self._persona(m.group("name"), persona)
        if self.reminders is not None:
            said = self.reminders.answer(stripped, conversation_id=conversation_id)
            if said is not None:
                return RuleAnswer(said)
        if self.memory is None:
            return None
        m = _REMEMBER.match(stripped)
        if m:
            return self._remember(m.group("text").strip(), conversation_id)
        m = _FORGET.match(stripped)
        if m and not _YES.match(stripped) and not _NO.match(stripped):
            query = m.group("query").strip().rstrip("?.!")
            if any(w.lower() not in _VAGUE for w in _WORD.findall(query)):
                return self._find(query, conversation_id)
        return None

    # -- personas --------------------------------------------------------------------------------

    def _persona(self, name: str | None, current: str) -> RuleAnswer:
        listing = "; ".join(
            f"{p.name} ({p.description})" if p.description else p.name for p in self.personas.all()
        )
        if name is None:
            return RuleAnswer(f"Persona: {current}. Personas: {listing}. Choose one with /persona NAME.")
        if name not in self.personas:
            return RuleAnswer(f"There is no persona {name!r}. Personas: {listing}.")
        return RuleAnswer(f"Persona for this conversation: {name}.", persona=name)

    # -- memory ----------------------------------------------------------------------------------

    def _remember(self, text: str, conversation_id: str) -> RuleAnswer:
        assert self.memory is not None
        memory_id = self.memory.add(text, "note", conversation_id, provenance=USER)
        return RuleAnswer(f"I'll remember that: {text} ({memory_id})")

    def _find(self, query: str, conversation_id: str) -> RuleAnswer:
        assert self.memory is not None
        matches: list[Match] = []
        for hit in self.memory.search(query, k=self.max_matches * 2, recency=False):
            dense = hit.retrievers.get("dense", {}).get("score", -1.0)
            if "keyword" not in hit.retrievers and dense < self.min_similarity:
                continue
            untrusted = hit.as_dict()["provenance"] == UNTRUSTED
            matches.append(Match(hit.record.id, hit.record.text, untrusted))
            if len(matches) >= self.max_matches:
                break
        if not matches:
            return RuleAnswer(f"I have no memory matching {query!r}; nothing to forget.")
        with self._lock:
            self._pending[conversation_id] = matches
            while len(self._pending) > MAX_PENDING:
                self._pending.popitem(last=False)
        lines = [f"These memories match {query!r}:"]
        for n, match in enumerate(matches, start=1):
            shown = clean_text(match.text, 200)
            lines.append(f"{n}. {shown} ({match.id}{', from an outside source' if match.untrusted else ''})")
        lines.append(
            'Forget all of them? Answer "yes" (or /forget confirm) to delete them, anything else keeps them.'
        )
        return RuleAnswer("\n".join(lines), untrusted=any(m.untrusted for m in matches))

    def _delete(self, matches: list[Match]) -> RuleAnswer:
        assert self.memory is not None
        gone = [m.id for m in matches if self.memory.delete(m.id)]
        if not gone:
            return RuleAnswer("Those memories were already gone.")
        return RuleAnswer(f"Forgot {len(gone)} memor{'y' if len(gone) == 1 else 'ies'}: {', '.join(gone)}.")
