"""What memory adds to a prompt, and where a text came from. Shared by the orchestrator (which asks),
memory (which answers) and the skill kit (which stores skill results), so none imports the others.

Provenance, set by code from where a text came from (never from an API client's say-so):

- ``user``: the user wrote it (a chat message, a note, an imported file);
- ``conversation``: the assistant produced it from trusted input (a model answer, a skill's output that
  is not derived from fetched text);
- ``untrusted``: derived from text fetched from outside (feed items, the results of skills built from
  headlines, model answers whose prompt held such text). Taint follows derivation: whatever is made from
  untrusted text is untrusted too. Untrusted text is only ever put into a prompt as delimited data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

Provenance = Literal["user", "conversation", "untrusted"]
USER: Provenance = "user"
CONVERSATION: Provenance = "conversation"
UNTRUSTED: Provenance = "untrusted"
PROVENANCES: tuple[Provenance, ...] = (USER, CONVERSATION, UNTRUSTED)


# After the trusted memories, before the user's words: which memory to use. Without it the small default
# model (qwen0.5b) answered "what pizza do I like?" from the note about Tomas's chocolate, and questions no
# note answers from whatever note was there (issue 22; `assistant eval notes`). Plain words, no heading and
# no label the model could copy into its answer.
TRUSTED_GUIDE = (
    "Use only the item above that answers the message below, and ignore the others. Say the fact itself "
    "(the name, the number, the place) as something you know, without mentioning notes. If the message "
    "asks about the user's own life and no item answers it, say that you don't know."
)


class TurnRecord(NamedTuple):
    """A finished chat turn handed to memory: its role, its text and where that text came from."""

    role: str
    text: str
    provenance: Provenance


@dataclass
class Recall:
    """What memory adds to a prompt, and the items it came from (shown to clients).

    ``block`` holds trusted memories (user-written, conversation); ``untrusted_block`` holds anything
    derived from untrusted sources, delimited as data. They are never merged: the orchestrator places
    both just before the newest user message, separately."""

    block: str | None = None
    items: list[dict[str, Any]] = field(default_factory=list)
    untrusted_block: str | None = None

    @property
    def tainted(self) -> bool:
        """True when the prompt will hold untrusted recalled material (the answer is then untrusted)."""
        return self.untrusted_block is not None or any(i.get("untrusted") for i in self.items)

    def blocks(self) -> list[str]:
        """The blocks for the newest user message: the trusted one with ``TRUSTED_GUIDE`` after it, then
        the untrusted one (delimited as data, as memory rendered it)."""
        trusted = f"{self.block}\n{TRUSTED_GUIDE}" if self.block else None
        return [b for b in (trusted, self.untrusted_block) if b]
