"""How many tokens a prompt costs on the daemon's model, and how much of a page fits one prompt.

``PromptMeter`` counts a prompt the way the backend will: the embedded backend's own chat template and
tokenizer (assistant.llm.fit.PromptEncoder, exactly the tokens it will evaluate), or, for a model server
or anything else, the remote backend's upper estimate against ``model.n_ctx``.

``fit_items`` lets the context fitting of assistant.llm.fit decide how many of a page's pieces go into one
prompt: the pieces are handed to ``fit_messages`` as a conversation whose newest message is the first piece
still to read, so "the newest turns that fit" are exactly "the next pieces that fit"; each candidate cut
is measured as the real prompt it would make.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from assistant.llm.fit import PromptEncoder, fit_messages
from assistant.llm.types import ChatMessage, LLMBackend

BuildPrompt = Callable[[list[str]], list[ChatMessage]]


@dataclass
class PromptMeter:
    n_ctx: int
    cost: Callable[[list[ChatMessage]], int]  # tokens of the whole prompt
    text_cost: Callable[[str], int]  # tokens of one text alone


def meter_for(backend: LLMBackend, n_ctx: int) -> PromptMeter:
    """A meter for ``backend`` (a new one per summary: the embedded meter caches each piece's tokens).
    ``n_ctx`` is ``model.n_ctx``, used when the backend does not say its own."""
    from assistant.llm.llama import LlamaBackend

    if isinstance(backend, LlamaBackend):
        encoder = PromptEncoder(backend.llm.tokenize)
        formatter = backend.formatter
        return PromptMeter(
            backend.n_ctx,
            lambda msgs: len(encoder.encode(formatter(msgs))),
            lambda text: len(encoder.plain(text)),
        )
    from assistant.llm.remote import estimate_tokens, prompt_tokens

    own = getattr(backend, "n_ctx", None)
    return PromptMeter(own if isinstance(own, int) else n_ctx, prompt_tokens, estimate_tokens)


def split_long(items: Sequence[str], meter: PromptMeter, limit: int) -> list[str]:
    """``items`` with any item over ``limit`` tokens cut at word boundaries into pieces under it."""
    out: list[str] = []
    for item in items:
        cost = meter.text_cost(item)
        if cost <= limit:
            out.append(item)
            continue
        words = item.split()
        pieces = max(2, math.ceil(cost / limit) + 1)
        size = max(1, math.ceil(len(words) / pieces))
        chunks = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
        out += split_long(chunks, meter, limit) if size > 1 else chunks
    return out


def fit_items(items: Sequence[str], start: int, build: BuildPrompt, meter: PromptMeter, budget: int) -> int:
    """How many of ``items[start:]`` (at least one) make a prompt of at most ``budget`` tokens.
    BadRequest (context_length_exceeded) when not even one does."""
    rest = list(items[start:])
    system = build(rest[:1])[0]
    as_turns = [system] + [ChatMessage("user", text) for text in reversed(rest)]

    def prompt_cost(kept: list[ChatMessage]) -> int:
        return meter.cost(build([m.content for m in reversed(kept[1:])]))

    fitted = fit_messages(
        as_turns,
        budget,
        lambda m: meter.text_cost(m.content),
        prompt_cost,
        threading.Event(),
        context_note=f"the model's context is {meter.n_ctx} tokens",
    )
    assert fitted is not None  # never cancelled
    return len(fitted.messages) - 1


def parts(items: Sequence[str], build: BuildPrompt, meter: PromptMeter, budget: int) -> list[list[str]]:
    """``items`` cut into consecutive runs, each making a prompt of at most ``budget`` tokens."""
    out: list[list[str]] = []
    start = 0
    while start < len(items):
        n = fit_items(items, start, build, meter, budget)
        out.append(list(items[start : start + n]))
        start += n
    return out
