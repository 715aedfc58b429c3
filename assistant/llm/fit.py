"""Fitting a long conversation into the model's context, in linear time and cancellably.

The system messages and the newest message are always kept; the oldest other turns are dropped, cut so
the kept dialogue starts with a user turn (templates such as Gemma's insist on user/assistant
alternation). The cut is found in two steps:

1. Walking back from the newest turn, each message's own text is measured once (``text_cost``, cached by
   the caller) until the texts alone exceed the budget: no cut older than that can fit, so messages before
   it are never measured at all.
2. A binary search over the remaining cut points measures whole prompts (``prompt_cost``: format and
   tokenize, with the per-message tokens cached), O(log n) times.

``cancel`` is checked between every two measurements; a cancelled fit returns None.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from assistant.core.errors import BadRequest
from assistant.llm.chat_templates import Plain, Prompt
from assistant.llm.types import ChatMessage

Tokenize = Callable[[bytes, bool, bool], list[int]]  # (utf-8 text, add_bos, special) -> token ids


@dataclass(frozen=True)
class Fitted:
    messages: list[ChatMessage]
    cost: int  # tokens of the kept prompt (or the estimate, for the remote backend)
    dropped: int  # how many old turns were left out


def fit_messages(
    messages: Sequence[ChatMessage],
    budget: int,
    text_cost: Callable[[ChatMessage], int],
    prompt_cost: Callable[[list[ChatMessage]], int],
    cancel: threading.Event,
    *,
    context_note: str,
) -> Fitted | None:
    """The newest messages whose prompt costs at most ``budget``; BadRequest when even the system
    messages and the newest message do not fit; None when ``cancel`` was set meanwhile."""
    msgs = list(messages)
    last = len(msgs) - 1
    fixed = [i for i, m in enumerate(msgs) if m.role == "system" or i == last]
    droppable = [i for i, m in enumerate(msgs) if m.role != "system" and i != last]

    def kept(cut: int) -> list[ChatMessage]:
        gone = set(droppable[:cut])
        return [m for i, m in enumerate(msgs) if i not in gone]

    # Step 1: a lower bound on the cut from the texts alone, newest first.
    floor = 0
    spent = 0
    for i in fixed:
        if cancel.is_set():
            return None
        spent += text_cost(msgs[i])
    for j in range(len(droppable) - 1, -1, -1):
        if spent > budget:
            floor = j + 2  # droppable[j + 1] already overflowed
            break
        if cancel.is_set():
            return None
        spent += text_cost(msgs[droppable[j]])
    else:
        floor = 0 if spent <= budget else 1
    floor = min(floor, len(droppable))

    # Step 2: binary search over the cut points that leave a user turn first.
    cuts = [c for c in range(floor, len(droppable) + 1) if _starts_well(msgs, droppable, c)]
    costs: dict[int, int] = {}

    def cost(cut: int) -> int | None:
        if cancel.is_set():
            return None
        if cut not in costs:
            costs[cut] = prompt_cost(kept(cut))
        return costs[cut]

    first = cost(cuts[0])  # usually everything left after step 1 fits: one format
    if first is None:
        return None
    if first <= budget:
        return Fitted(kept(cuts[0]), first, cuts[0])
    worst = cost(cuts[-1])
    if worst is None:
        return None
    if worst > budget:
        raise BadRequest(
            f"the prompt is {worst} tokens even with only the system text and the last message; "
            f"{context_note} (shorten the message or raise model.n_ctx)",
            code="context_length_exceeded",
        )
    lo, hi = 1, len(cuts) - 1  # cuts[0] does not fit, cuts[hi] does: find the first that does
    while lo < hi:
        mid = (lo + hi) // 2
        c = cost(cuts[mid])
        if c is None:
            return None
        if c <= budget:
            hi = mid
        else:
            lo = mid + 1
    best = cuts[lo]
    return Fitted(kept(best), costs[best], best)


def _starts_well(msgs: Sequence[ChatMessage], droppable: Sequence[int], cut: int) -> bool:
    """A cut is allowed when nothing is dropped, everything is, or the first kept turn is a user's."""
    return cut == 0 or cut == len(droppable) or msgs[droppable[cut]].role == "user"


class PromptEncoder:
    """Tokenizes prompts part by part: template text with special tokens parsed, message text without.

    The tokens of each distinct piece are cached, so measuring many cuts of one conversation tokenizes
    every message once. BOS: the vocabulary's own (``add_bos``) goes in front unless the template already
    wrote it (Gemma's and Llama 3's templates write ``bos_token``); a template whose first token merely
    is the BOS token (SmolLM2: ``<|im_start|>``, no BOS added) keeps it.
    """

    def __init__(self, tokenize: Tokenize) -> None:
        self._tokenize = tokenize
        self._special: dict[str, list[int]] = {}
        self._plain: dict[str, list[int]] = {}
        self.bos = tokenize(b"", True, True)  # [BOS] or [] as the model's vocabulary wants

    def plain(self, text: str) -> list[int]:
        toks = self._plain.get(text)
        if toks is None:
            toks = self._plain[text] = self._tokenize(text.encode("utf-8"), False, False)
        return toks

    def template(self, text: str) -> list[int]:
        toks = self._special.get(text)
        if toks is None:
            toks = self._special[text] = self._tokenize(text.encode("utf-8"), False, True)
        return toks

    def encode(self, prompt: Prompt) -> list[int]:
        out: list[int] = []
        for part in prompt.parts:
            out += self.plain(part.text) if isinstance(part, Plain) else self.template(part)
        if self.bos and out[: len(self.bos)] == self.bos and isinstance(prompt.parts[0], str):
            return out
        return self.bos + out
