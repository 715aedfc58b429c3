"""Reading a web page: fetched through the feeds' guarded fetcher (same address policy, whole-fetch
deadline, size cap, redirects checked at every hop), main text extracted, cleaned for a prompt.

Every way a page can be unusable ends in a PageError that says so: an HTTP error (401/402/403 read as
"needs a login or a subscription"), a body that is not HTML or plain text, a body over ``pages.max_bytes``,
a fetch over ``pages.timeout``, a page with no readable text, a page marked paywalled that serves only a
teaser, and a text over ``pages.max_words``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from assistant.core.text import clean_text, clean_title
from assistant.feeds.fetch import FeedFetcher, FetchedDocument, FetchError
from assistant.pages.extract import Extractor, extract
from assistant.pages.models import Page, PageError

ACCEPT = "text/html, application/xhtml+xml;q=0.9, text/plain;q=0.5"
HTML_TYPES = ("text/html", "application/xhtml+xml")
TEXT_TYPES = ("text/plain",)
MIN_WORDS = 20  # less than this is no article (an error page, a script-only shell)
TEASER_WORDS = 300  # a page marked paywalled with fewer words than this served only its teaser
PARAGRAPH_MAX = 20_000  # characters of one paragraph kept whole (clean_text's cut applies beyond)
_PAYWALL = re.compile(rb'"isAccessibleForFree"\s*:\s*"?false', re.IGNORECASE)
_LOGIN_STATUSES = {401: "needs a login", 402: "needs payment", 403: "refused access"}


class PageReader:
    """Fetches and extracts pages. ``fetcher`` is a FeedFetcher asking for HTML (see ``build_fetcher``);
    ``method`` is the extraction (the benchmark compares them; the daemon uses trafilatura)."""

    def __init__(self, fetcher: FeedFetcher, *, max_words: int, method: Extractor = "trafilatura") -> None:
        self.fetcher = fetcher
        self.max_words = max_words
        self.method: Extractor = method

    def close(self) -> None:
        self.fetcher.close()

    def read(self, url: str) -> Page:
        """The page at ``url``, or PageError saying why it cannot be summarized (BadRequest for a bad URL
        or a refused address, as for feeds)."""
        doc = self.fetch(url)
        page = self.extract(url, doc)
        self.check(page, doc)
        return page

    def fetch(self, url: str) -> FetchedDocument:
        """The page's response (whole, within pages.max_bytes), or PageError."""
        url = self.fetcher.check_destination(url)
        try:
            doc = self.fetcher.fetch(url)
        except FetchError as exc:
            raise PageError(_fetch_problem(url, exc), code=_fetch_code(exc)) from None
        if doc.problem is not None:
            if "limit" in doc.problem:
                raise PageError(
                    f"{url} is too large to summarize: {doc.problem.split(';')[0]} (pages.max_bytes)",
                    code="page_too_large",
                )
            raise PageError(f"{url} could not be read whole: {doc.problem}", code="page_fetch_failed")
        return doc

    def extract(self, url: str, doc: FetchedDocument) -> Page:
        """The main text of a fetched HTML or plain-text page, cleaned; PageError for other types."""
        content_type = doc.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type in TEXT_TYPES:
            title, text, extractor = "", _decode(doc), "plain text"
        elif content_type in HTML_TYPES or (not content_type and _looks_like_html(doc.body)):
            found = extract(doc.body, doc.url, self.method)
            title, text, extractor = found.title, found.text, found.extractor
        else:
            raise PageError(
                f"{url} is not a web page ({content_type or 'no content type'}); only HTML and plain-text "
                "pages can be summarized",
                code="page_not_html",
            )
        paragraphs = tuple(p for p in (clean_text(line, PARAGRAPH_MAX) for line in text.split("\n")) if p)
        return Page(url, doc.url, clean_title(title, 200), paragraphs, extractor, content_type or "text/html")

    def check(self, page: Page, doc: FetchedDocument) -> None:
        """PageError when the page is a paywall's teaser, has no text, or is over pages.max_words."""
        words = page.words
        if _PAYWALL.search(doc.body[:2_000_000]) and words < TEASER_WORDS:
            raise PageError(
                f"{page.url} is behind a paywall: the page says its content is not free and serves only "
                f"{words} words",
                code="page_paywalled",
            )
        if words < MIN_WORDS:
            raise PageError(
                f"{page.url} has no readable text ({words} words found): it may be empty, need JavaScript, "
                "or need a login",
                code="page_empty",
            )
        if words > self.max_words:
            raise PageError(
                f"{page.url} is {words} words long, over the {self.max_words}-word limit (pages.max_words)",
                code="page_too_long",
            )


def build_fetcher(
    *,
    timeout: float,
    max_bytes: int,
    max_redirects: int,
    user_agent: str,
    allowed_networks: Iterable[str],
) -> FeedFetcher:
    """The feeds' guarded fetcher, asking for HTML."""
    return FeedFetcher(
        timeout=timeout,
        max_bytes=max_bytes,
        max_redirects=max_redirects,
        user_agent=user_agent,
        allowed_networks=allowed_networks,
        accept=ACCEPT,
    )


def _decode(doc: FetchedDocument) -> str:
    m = re.search(r"charset=([\w.:-]+)", doc.headers.get("content-type", ""), re.IGNORECASE)
    try:
        return doc.body.decode(m.group(1) if m else "utf-8", "replace")
    except LookupError:
        return doc.body.decode("utf-8", "replace")


def _looks_like_html(body: bytes) -> bool:
    head = body[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<body" in head


def _fetch_problem(url: str, exc: FetchError) -> str:
    if exc.status in _LOGIN_STATUSES:
        return (
            f"{url} {_LOGIN_STATUSES[exc.status]} ({exc.message}): it may be paywalled or need a login, "
            "which the assistant does not have"
        )
    if "timed out" in exc.message:
        return f"{url} was too slow: {exc.message} (pages.timeout)"
    return f"{url} could not be fetched: {exc.message}"


def _fetch_code(exc: FetchError) -> str:
    if exc.status in _LOGIN_STATUSES:
        return "page_paywalled"
    if "timed out" in exc.message:
        return "page_too_slow"
    return "page_fetch_failed"
