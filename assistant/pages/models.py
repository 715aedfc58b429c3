"""What the pages part hands out: a read page, its summary, and the error that says why a page cannot be
summarized."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from assistant.core.errors import AssistantError

Style = Literal["summary", "eli5"]
SummaryPath = Literal["model", "retry", "extractive"]


class PageError(AssistantError):
    """A page that cannot be summarized, and why: not HTML, empty, paywalled, too large, too slow,
    refused or unreachable. The message says what happened and, where a setting decides, which one."""

    status = 422
    type = "invalid_request_error"
    code = "page_unusable"


@dataclass(frozen=True)
class Page:
    """A fetched page's main text, cleaned (one line per paragraph, no control tokens or hidden text)."""

    url: str  # the URL asked for
    final_url: str  # after redirects
    title: str  # cleaned; "" when the page has none
    paragraphs: tuple[str, ...]
    extractor: str  # the library whose text this is
    content_type: str = "text/html"

    @property
    def words(self) -> int:
        return sum(len(p.split()) for p in self.paragraphs)

    @property
    def text(self) -> str:
        return "\n".join(self.paragraphs)


@dataclass(frozen=True)
class PageSummary:
    """A page's summary. ``text`` is the model's (cleaned, no links); ``url`` and ``title`` are cited by
    code. ``parts`` is how many pieces the page was read in (1: it fit the context whole).

    Every number, date and name of the text was checked against the page (assistant.pages.grounding);
    ``path`` says which text passed: the model's summary ("model"), a plainer, extractive second try at
    temperature 0 ("retry"), or, when neither kept to the page (or the model gave nothing usable), the
    lead sentences of the page's first paragraphs, made by code ("extractive"; ``fallback`` is then true).
    ``unsupported`` lists what the first summary stated that the page does not (empty on the model path)."""

    url: str
    title: str
    text: str
    style: Style
    words: int
    parts: int
    levels: int = 1  # map steps plus reduce rounds
    words_read: int = 0  # of the page's words, how many the model read (pages.input budget: its start)
    fallback: bool = False
    path: SummaryPath = "model"
    unsupported: tuple[str, ...] = ()
    prompt_tokens: list[int] = field(default_factory=list)  # of every model call, to check the fit
