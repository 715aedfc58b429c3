"""Summarizing a page that may not fit the model's context: map, then reduce.

A page that fits one prompt is summarized in one call. A longer one is cut into consecutive parts that
each fit (assistant.pages.budget, decided by assistant.llm.fit); each part gets a short note (the map
step, ``pages.map_tokens`` each), and the notes are summarized together (the reduce step). Notes that do
not fit one prompt either are themselves combined in groups first, as many rounds as needed.

The page's text, its title and the model's notes about it are untrusted: they go to the model only as
items of a quoted block (assistant.core.text.quoted_block) that the system prompt declares to be data,
never as instructions. Every text was cleaned before (no control tokens of any chat template, no prompt
delimiters, no hidden characters), and the model's output is cleaned again, links removed (the URL shown
to the user comes from code). An output that is empty or echoes the block's marker is not used.

The summary must keep to the page: every number, date and name in it is looked for in the page's text
(assistant.pages.grounding). When one is missing (or the model gave nothing usable), the model is asked
once more, plainly and at temperature 0, to say what the page's opening is about in the page's own words;
when that fails the check too, the summary is made by code: the lead sentences of the page's first
paragraphs, cut to the summary's length. Never an unchecked summary; ``PageSummary.path`` says which.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from assistant.core.text import clean_text, data_rule, quoted_block, strip_links
from assistant.llm.types import ChatMessage, Completion, GenerationParams
from assistant.pages.budget import BuildPrompt, PromptMeter, fit_items, parts, split_long
from assistant.pages.grounding import Grounding, PageFacts
from assistant.pages.models import Page, PageError, PageSummary, Style, SummaryPath

Generate = Callable[[list[ChatMessage], GenerationParams], Completion]

MARGIN = 32  # tokens kept free besides the answer: the block's random marker tokenizes differently per prompt
SUMMARY_MAX = 2000  # characters of a summary shown
NOTE_MAX = 1000  # characters of one note kept for the reduce step
FALLBACK_WORDS = 60
TEMPERATURE = 0.3  # of the first try; the retry is greedy
RETRY_INPUT = 768  # at most this many prompt tokens of the page's opening for the retry
RETRY_TOKENS = 128  # answer tokens of the retry (two or three sentences)
LEAD_SENTENCES = 3  # of the extractive summary
LEAD_MIN_WORDS = 8  # a shorter paragraph is a heading, a byline or a caption: no lead sentence
_MARKER = re.compile(r"(?:PAGE|NOTES)-[0-9a-f]{8}", re.IGNORECASE)
_PAGE_RULE = "It is the text of one web page, fetched from the internet."

_FINAL_ASK: dict[Style, str] = {
    "summary": "Write a summary of the page in three to five sentences: what it is about and its main points.",
    "eli5": (
        "Explain what the page says in three to five short, simple sentences, as you would to a "
        "ten-year-old child. Use everyday words."
    ),
}
_RETRY_ROLE = "You tell the user what a web page says, in the page's own words."
_RETRY_ASK = (
    "Write a summary of this page in two or three sentences, using the page's own words. Copy every name, "
    "number and date exactly as the page writes it, and add nothing that is not on the page."
)
_ROLE: dict[Style, str] = {
    "summary": "You summarize web pages for the user.",
    "eli5": "You explain web pages to the user in very simple words.",
}


@dataclass(frozen=True)
class Lengths:
    map_tokens: int  # answer length of one map (note) step
    summary_tokens: int  # answer length of the final summary
    input_tokens: int = 0  # tokens of the page's text read for a summary, from its start (0: all of it)


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


def retry_prompt(title: str, items: Sequence[str]) -> list[ChatMessage]:
    """The plainer second try: what the page's opening says, in its own words."""
    return _messages(_RETRY_ROLE, "PAGE", _title_item(title) + list(items), _RETRY_ASK)


_ITEM_ECHO = re.compile(r'^[ \t>]*\d{1,3}\.\s+"(.*?)"?\s*$', re.MULTILINE)  # a block item copied
_QUOTE_MARK = re.compile(r"^[ \t]*>+(?!\|)[ \t]?", re.MULTILINE)  # not "<|...|>": control tokens go first
_LAST_END = re.compile(r"[.!?][\"”’)]*(?=\s|$)")


def whole_sentences(text: str) -> str:
    """An answer cut by its token limit, without its unfinished last sentence (when at least one
    sentence came whole)."""
    ends = [m.end() for m in _LAST_END.finditer(text)]
    return text[: ends[-1]] if ends else text


_LIST_MARK = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*\u2022])\s+")


def as_sentences(text: str) -> str:
    """A list the model wrote, as sentences: no item numbers or bullets (the numbering is not a fact of
    the page: "1." is no date or count), each item ending a sentence, an item repeated word for word kept
    once (a small model that loops repeats its last line)."""
    lines: list[str] = []
    seen: set[str] = set()
    for line in text.splitlines():
        item = _LIST_MARK.match(line)
        line = line[item.end() :] if item else line.strip()
        key = " ".join(line.lower().split())
        if not key or key in seen:
            continue
        seen.add(key)
        if item and not line.rstrip().endswith((".", "!", "?", ":")):
            line = line.rstrip() + "."
        lines.append(line)
    return "\n".join(lines)


def clean_answer(text: str, limit: int = SUMMARY_MAX, title: str = "") -> str:
    """The model's text as shown: one clean line, no links; "" when it echoes a block's marker. Items
    of the block copied as they were quoted (``3. "text"``, ``> Title: ...``) keep their text only, and
    a copied title item (``Title: <the page's title>``) is dropped."""
    text = _QUOTE_MARK.sub("", _ITEM_ECHO.sub(r"\1", text))
    cleaned = clean_text(strip_links(as_sentences(text)), limit).lstrip("> ")
    if cleaned.lower().startswith("title:"):
        cleaned = cleaned[6:].lstrip()
        if title and cleaned.startswith(title):
            cleaned = cleaned[len(title) :].lstrip(" .:-\u2013\u2014")
    return "" if _MARKER.search(cleaned) else cleaned


_ABBREVIATION = re.compile(
    r"(?:\b(?:Mr|Mrs|Ms|Dr|Prof|St|Jr|Sr|Gov|Sen|Rep|Gen|Col|Lt|Sgt|Capt|No|Inc|Corp|Co|Ltd|vs|etc|Jan|Feb|"
    r"Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|e\.g|i\.e|[A-Z])|\b(?:[A-Z]\.)+[A-Z]?)$"
)
_SENTENCE_BREAK = re.compile(r"[.!?][\"”’)]*\s+(?=[\"“‘(]?[A-Z0-9])")


_NOT_PROSE = re.compile(r"\bwww\.|https?://|@\w|\|", re.IGNORECASE)


def lead_sentence(paragraph: str) -> str:
    """The first sentence of a paragraph (not cut after "Dr.", "U.S." or an initial)."""
    for m in _SENTENCE_BREAK.finditer(paragraph):
        if not _ABBREVIATION.search(paragraph[: m.start()]):
            return paragraph[: m.end()].strip()
    return paragraph.strip()


def extractive(page: Page, max_words: int) -> str:
    """A summary made by code: the lead sentences of the page's first paragraphs (headings, bylines and
    captions skipped), at most ``LEAD_SENTENCES`` and about ``max_words`` words."""
    chosen: list[str] = []
    words = 0
    for paragraph in page.paragraphs:
        if len(paragraph.split()) < LEAD_MIN_WORDS or paragraph == page.title:
            continue
        sentence = lead_sentence(paragraph)
        if _NOT_PROSE.search(sentence) or sentence.count(": ") >= 2:
            continue  # a line of labels ("Tested by: ... RRP: ..."), a link, a dateline
        n = len(sentence.split())
        if chosen and words + n > max_words:
            break
        chosen.append(sentence)
        words += n
        if len(chosen) == LEAD_SENTENCES:
            break
    if not chosen:
        return opening(page, max_words)
    text = " ".join(chosen)
    if words > max_words:
        return " ".join(text.split()[:max_words]) + "\u2026"
    return text


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
        self.words_read = 0

    def size(self, items: Sequence[str]) -> int:
        return sum(self.meter.text_cost(t) for t in items)

    def budget(self, answer_tokens: int) -> int:
        return self.meter.n_ctx - answer_tokens - MARGIN

    def ask(self, messages: list[ChatMessage], max_tokens: int, temperature: float = TEMPERATURE) -> str:
        self.prompt_tokens.append(self.meter.cost(messages))
        # A summary's prompts are never continued: no saved state for the prompt cache.
        params = GenerationParams(max_tokens=max_tokens, temperature=temperature, save_state=False)
        completion = self.generate(messages, params)
        if completion.finish_reason == "length":
            return whole_sentences(completion.text)
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

    def head(self, paragraphs: Sequence[str]) -> list[str]:
        """The page's paragraphs from its start up to ``input_tokens`` tokens (all when 0), a paragraph
        that would cross the limit cut at a word boundary."""
        limit = self.lengths.input_tokens
        if limit <= 0:
            return list(paragraphs)
        out: list[str] = []
        used = 0
        for piece in split_long(paragraphs, self.meter, max(16, limit // 4)):
            used += self.meter.text_cost(piece)
            if used > limit and out:
                break
            out.append(piece)
        return out

    def first_try(self, page: Page, style: Style) -> str:
        """The model's summary: of the whole page when it fits one prompt, else map, then reduce."""
        answer = self.lengths.summary_tokens
        final_budget = self.budget(answer)
        items: list[str] = self.head(page.paragraphs)
        self.words_read = sum(len(i.split()) for i in items)
        as_notes = False
        while self.meter.cost(final_prompt(style, page.title, items, notes=as_notes)) > final_budget:
            before = self.size(items)
            items = self.notes(page.title, items, notes=as_notes)
            as_notes = True
            if not items:
                return ""
            if self.size(items) >= before:
                raise PageError(
                    f"{page.url} is too long for the model's context ({self.meter.n_ctx} tokens): the notes on "
                    "its parts do not get shorter; raise model.n_ctx or lower pages.map_tokens",
                    code="page_too_long",
                )
        return clean_answer(
            self.ask(final_prompt(style, page.title, items, notes=as_notes), answer), title=page.title
        )

    def retry(self, page: Page) -> str:
        """The plainer try, greedy: the page's opening paragraphs that fit one prompt of at most
        ``RETRY_INPUT`` tokens, and a request to say what they are about in their own words."""
        answer = self.lengths.summary_tokens
        budget = min(self.budget(answer), RETRY_INPUT)
        if budget < 64 or not page.paragraphs:
            return ""
        pieces = split_long(page.paragraphs, self.meter, max(16, budget // 4))
        n = fit_items(pieces, 0, lambda chunk: retry_prompt(page.title, chunk), self.meter, budget)
        text = self.ask(retry_prompt(page.title, pieces[:n]), min(answer, RETRY_TOKENS), temperature=0.0)
        return clean_answer(text, title=page.title)

    def summarize(self, page: Page, style: Style) -> PageSummary:
        facts = PageFacts([page.title, *page.paragraphs])
        text = self.first_try(page, style)
        first: Grounding | None = facts.check(text) if text else None
        path: SummaryPath = "model"
        if first is None or not first.ok:
            text, path = self.retry(page), "retry"
            if not text or not facts.check(text).ok:
                max_words = max(20, self.lengths.summary_tokens * 3 // 4)
                text, path = extractive(page, max_words), "extractive"
        return PageSummary(
            url=page.url,
            title=page.title,
            text=text,
            style=style,
            words=page.words,
            words_read=min(page.words, self.words_read) if self.words_read else page.words,
            parts=self.rounds[0] if self.rounds else 1,
            levels=len(self.rounds) + 1,
            fallback=path == "extractive",
            path=path,
            unsupported=first.unsupported if first is not None else (),
            prompt_tokens=list(self.prompt_tokens),
        )
