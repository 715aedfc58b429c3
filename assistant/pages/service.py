"""The pages part: ``PageService.summarize(url)`` reads a page (assistant.pages.read) and summarizes it
with the daemon's model (assistant.pages.summarize). Built by ``build_pages`` in the composition root
when ``pages.enabled``; skills reach it as ``ctx.pages`` (assistant.skillkit.api.PageReader)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from assistant.config import Settings
from assistant.core.errors import BadRequest
from assistant.llm.types import LLMBackend
from assistant.pages.budget import PromptMeter, meter_for
from assistant.pages.models import Page, PageSummary, Style
from assistant.pages.read import PageReader, build_fetcher
from assistant.pages.summarize import Generate, Lengths, MapReduce

STYLES: tuple[Style, ...] = ("summary", "eli5")
# Prompt tokens of a page's text read for its summary, from the start (about 750 words of English). Chosen
# by measurement (benchmarks/bench_summaries.py): the page's prompt is most of a summary's time on a small
# device, a page's lead holds what a summary says, and a longer page was read in parts (map, then reduce)
# at minutes a page. 0 reads the whole page. (A candidate for a pages setting.)
INPUT_TOKENS = 1024


class PageService:
    """Reads and summarizes pages. ``meter`` makes a fresh PromptMeter per summary (its token caches live
    as long as one page)."""

    def __init__(
        self, reader: PageReader, generate: Generate, meter: Callable[[], PromptMeter], lengths: Lengths
    ) -> None:
        self.reader = reader
        self.generate = generate
        self.meter = meter
        self.lengths = lengths

    def read(self, url: str) -> Page:
        return self.reader.read(url)

    def summarize(self, url: str, style: Style = "summary", *, max_tokens: int | None = None) -> PageSummary:
        """Fetch ``url`` and summarize it (``style`` "eli5": in simple words). ``max_tokens`` overrides
        ``pages.summary_tokens``. PageError says why a page cannot be summarized."""
        if style not in STYLES:
            raise BadRequest(f"style must be one of {', '.join(STYLES)}", code="bad_style")
        page = self.reader.read(url)
        lengths = self.lengths if max_tokens is None else replace(self.lengths, summary_tokens=max_tokens)
        return MapReduce(self.generate, self.meter(), lengths).summarize(page, style)

    def close(self) -> None:
        self.reader.close()


def build_pages(settings: Settings, generate: Generate, llm: LLMBackend) -> PageService:
    ps = settings.pages
    fetcher = build_fetcher(
        timeout=ps.timeout,
        max_bytes=ps.max_bytes,
        max_redirects=ps.max_redirects,
        user_agent=ps.user_agent,
        allowed_networks=settings.feeds.allowed_networks,  # one list of trusted networks for both
    )
    reader = PageReader(fetcher, max_words=ps.max_words)
    n_ctx = settings.model.n_ctx
    return PageService(
        reader,
        generate,
        lambda: meter_for(llm, n_ctx),
        Lengths(ps.map_tokens, ps.summary_tokens, INPUT_TOKENS),
    )
