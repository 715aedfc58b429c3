"""Summarizing a page that may not fit the model's context: map, then reduce.

A page that fits one prompt is summarized in one call. A longer one is cut into consecutive parts that
each fit (assistant.pages.budget, decided by assistant.llm.fit); each part gets a short note (the map
step, ``pages.map_tokens`` each), and the notes are summarized together (the reduce step). Notes that do
not fit one prompt either are themselves combined in groups first, as many rounds as needed.

The page's text, its title and the model's notes about it are untrusted: they go to the model only as
items of a quoted block (assistant.core.text.quoted_block) that the system prompt declares to be data,
never as instructions. Every text was cleaned before (no control tokens of any chat template, no prompt
delimiters, no hidden characters), and the model's output is cleaned again, links removed (the URL shown
to the user comes from code). An output that is empty or echoes the block's marker is not used: the
summary falls back to the page's opening sentences.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from assistant.core.text import clean_text, data_rule, quoted_block, strip_links
from assistant.llm.types import ChatMessage, Completion, GenerationParams
from assistant.pages.budget import BuildPrompt, PromptMeter, parts, split_long
from assistant.pages.models import Page, PageError, PageSummary, Style

Generate = Callable[[list[ChatMessage], GenerationParams], Completion]

MARGIN = 32  # tokens kept free besides the answer: the block's random marker tokenizes differently per prompt
SUMMARY_MAX = 2000  # characters of a summary shown
NOTE_MAX = 1000  # characters of one note kept for the reduce step
FALLBACK_WORDS = 60
_MARKER = re.compile(r"(?:PAGE|NOTES)-[0-9a-f]{8}", re.IGNORECASE)
_PAGE_RULE = "It is the text of one web page, fetched from the internet."

_FINAL_ASK: dict[Style, str] = {
    "summary": "Write a summary of the page in three to five sentences: what it is about and its main points.",
    "eli5": (
        "Explain what the page says in three to five short, simple sentences, as you would to a "
        "ten-year-old child. Use everyday words."
    ),
}
_ROLE: dict[Style, str] = {
    "summary": "You summarize web pages for the user.",
    "eli5": "You explain web pages to the user in very simple words.",
}


@dataclass(frozen=True)
class Lengths:
    map_tokens: int  # answer length of one map (note) step
    summary_tokens: int  # answer length of the final summary


def _messages(role: str, label: str, items: Sequence[str], ask: str) -> list[ChatMessage]:
    block = quoted_block(label, list(items))
    system = f"{role} {data_rule(block.marker)} {_PAGE_RULE}"
    return [ChatMessage("system", system), ChatMessage("user", f"{block.text}\n\n{ask}")]


def _title_item(title: str) -> list[str]:
    return [f"Title: {title}"] if title else []


def final_prompt(style: Style, title: str, items: Sequence[str], *, notes: bool) -> list[ChatMessage]:
    """The prompt that writes the answer: from the page's own paragraphs, or from notes on its parts."""
    label = "NOTES" if notes else "PAGE"
    lead = "These are notes on the parts of a long web page, in order. " if notes else ""
    return _messages(_ROLE[style], label, _title_item(title) + list(items), lead + _FINAL_ASK[style])


def note_prompt(title: str, items: Sequence[str], part: int, total: int, *, notes: bool) -> list[ChatMessage]:
    """A map step: short notes on part ``part`` of ``total`` (of the page, or of earlier notes)."""
    what = "notes on a long web page" if notes else "a long web page"
    ask = (
        f"This is part {part} of {total} of {what}. Write its main points in two or three short sentences. "
        "Say only what it says."
    )
    label = "NOTES" if notes else "PAGE"
    return _messages("You take notes on web pages.", label, _title_item(title) + list(items), ask)


def clean_answer(text: str, limit: int = SUMMARY_MAX) -> str:
    """The model's text as shown: one clean line, no links; "" when it echoes a block's marker."""
    cleaned = clean_text(strip_links(text), limit)
    return "" if _MARKER.search(cleaned) else cleaned


def opening(page: Page, words: int = FALLBACK_WORDS) -> str:
    """The page's first sentences, about ``words`` words, cut at a sentence end where there is one."""
    taken = " ".join(page.text.split()[:words])
    end = max(taken.rfind(". "), taken.rfind("! "), taken.rfind("? "))
    return taken[: end + 1] if end > len(taken) // 3 else taken + "\u2026"


class MapReduce:
    """One summary: the meter and the model calls of a single page (not shared between threads)."""

    def __init__(self, generate: Generate, meter: PromptMeter, lengths: Lengths) -> None:
        self.generate = generate
        self.meter = meter
        self.lengths = lengths
        self.prompt_tokens: list[int] = []
        self.rounds: list[int] = []  # parts read in each map round

    def size(self, items: Sequence[str]) -> int:
        return sum(self.meter.text_cost(t) for t in items)

    def budget(self, answer_tokens: int) -> int:
        return self.meter.n_ctx - answer_tokens - MARGIN

    def ask(self, messages: list[ChatMessage], max_tokens: int) -> str:
        self.prompt_tokens.append(self.meter.cost(messages))
        # A summary's prompts are never continued: no saved state for the prompt cache.
        params = GenerationParams(max_tokens=max_tokens, temperature=0.3, save_state=False)
        completion = self.generate(messages, params)
        return completion.text

    def split(self, items: Sequence[str], build: BuildPrompt, answer_tokens: int) -> list[list[str]]:
        budget = self.budget(answer_tokens)
        if budget < 64:
            raise PageError(
                f"the model's context ({self.meter.n_ctx} tokens) is too small to summarize pages in; "
                "raise model.n_ctx or lower pages.map_tokens and pages.summary_tokens",
                code="context_too_small",
            )
        pieces = split_long(items, self.meter, max(16, budget // 4))
        return parts(pieces, build, self.meter, budget)

    def notes(self, title: str, items: Sequence[str], *, notes: bool) -> list[str]:
        """One map round: a note per part of ``items``."""
        total_guess = 999  # the part numbers' digits cost the same in every round's measurement

        def build(chunk: list[str]) -> list[ChatMessage]:
            return note_prompt(title, chunk, total_guess, total_guess, notes=notes)

        runs = self.split(items, build, self.lengths.map_tokens)
        self.rounds.append(len(runs))
        out = []
        for i, run in enumerate(runs, 1):
            note = self.ask(note_prompt(title, run, i, len(runs), notes=notes), self.lengths.map_tokens)
            text = clean_answer(note, limit=NOTE_MAX)
            if text:
                out.append(text)
        return out

    def summarize(self, page: Page, style: Style) -> PageSummary:
        answer = self.lengths.summary_tokens
        final_budget = self.budget(answer)
        items: list[str] = list(page.paragraphs)
        as_notes = False
        while self.meter.cost(final_prompt(style, page.title, items, notes=as_notes)) > final_budget:
            before = self.size(items)
            items = self.notes(page.title, items, notes=as_notes)
            as_notes = True
            if not items:
                break
            if self.size(items) >= before:
                raise PageError(
                    f"{page.url} is too long for the model's context ({self.meter.n_ctx} tokens): the notes on "
                    "its parts do not get shorter; raise model.n_ctx or lower pages.map_tokens",
                    code="page_too_long",
                )
        text = ""
        if items:
            text = clean_answer(self.ask(final_prompt(style, page.title, items, notes=as_notes), answer))
        fallback = not text
        return PageSummary(
            url=page.url,
            title=page.title,
            text=opening(page) if fallback else text,
            style=style,
            words=page.words,
            parts=self.rounds[0] if self.rounds else 1,
            levels=len(self.rounds) + 1,
            fallback=fallback,
            prompt_tokens=list(self.prompt_tokens),
        )
