"""Parsing fetched bytes into plain-text entries: feedparser for RSS/Atom/RDF, a small reader for JSON Feed.

Broken documents are the norm: a bozo feed keeps the entries feedparser recovered and the reason is
recorded as ``problem``; an HTML page or an empty body gives no entries and says so.
"""

from __future__ import annotations

import calendar
import hashlib
import io
import json
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

from assistant.core.text import FEED_TITLE_MAX, LINK_MAX, SUMMARY_MAX, TITLE_MAX, clean_text, plain
from assistant.feeds.models import ParsedEntry, ParsedFeed

log = logging.getLogger(__name__)

PROBLEM_MAX = 300
# Response headers feedparser uses for encoding detection, base URI and language.
_PASSED_HEADERS = ("content-type", "content-location", "content-language")


def parse_document(
    body: bytes, url: str, headers: Mapping[str, str] | None = None, *, max_entries: int = 500
) -> ParsedFeed:
    """Entries of a feed document fetched from ``url`` (its final URL) with these response headers."""
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    if not body.strip():
        return ParsedFeed(title="", problem="empty response body")
    if _looks_like_json(body):
        return _parse_json_feed(body, url, max_entries)
    return _parse_xml_feed(body, url, headers, max_entries)


def _looks_like_json(body: bytes) -> bool:
    head = body[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"{")


def _problem(text: str) -> str:
    return clean_text(text, PROBLEM_MAX, markup=False)


def _safe_link(value: Any, base: str) -> str:
    """An absolute http(s) link, or "" (javascript:, data:, mailto: and junk are dropped)."""
    if not isinstance(value, str) or not value.strip():
        return ""
    try:
        link = urljoin(base, value.strip())
        scheme = urlsplit(link).scheme.lower()
    except ValueError:
        return ""
    if scheme not in ("http", "https") or len(link) > LINK_MAX or any(ord(c) < 33 for c in link):
        return ""
    return link


def _identity(guid: str, link: str, title: str, date_raw: str, summary: str) -> str:
    if guid:
        return "id:" + guid[:LINK_MAX]
    if link:
        return "link:" + link
    digest = hashlib.sha256(f"{title}\n{date_raw}\n{summary if not title else ''}".encode()).hexdigest()
    return "hash:" + digest


# -- RSS / Atom / RDF (feedparser) ---------------------------------------------------------------------------


def _parse_xml_feed(body: bytes, url: str, headers: dict[str, str], max_entries: int) -> ParsedFeed:
    parsed = _feedparser_parse(body, url, headers, max_entries)
    if not parsed.entries and _PREFIXED_ITEM_RE.search(body[:200_000]):
        # Some generators write <rss:item> without declaring the prefix; feedparser then finds nothing.
        retry = _feedparser_parse(_PREFIX_RE.sub(rb"<\1", body), url, headers, max_entries)
        if retry.entries:
            retry.problem = _problem(f"read after dropping undeclared 'rss:'/'atom:' prefixes; {parsed.problem}")
            return retry
    return parsed


_PREFIXED_ITEM_RE = re.compile(rb"<(?:rss|atom):(?:item|entry)\b")
_PREFIX_RE = re.compile(rb"<(/?)(?:rss|atom):")


def _feedparser_parse(body: bytes, url: str, headers: dict[str, str], max_entries: int) -> ParsedFeed:
    import feedparser

    passed = {k: headers[k] for k in _PASSED_HEADERS if k in headers}
    # Relative links resolve against Content-Location when the server sent one, else the fetched URL.
    passed["content-location"] = urljoin(url, passed.get("content-location", "")) or url
    try:
        result = feedparser.parse(io.BytesIO(body), response_headers=passed, sanitize_html=True)
    except Exception as exc:  # noqa: BLE001 - feedparser should not raise, but the bytes are hostile
        log.warning("feedparser raised on %s: %r", url, exc)
        return ParsedFeed(title="", problem=_problem(f"parser failed: {type(exc).__name__}: {exc}"))
    feed = result.get("feed", {})
    detail = feed.get("title_detail") or {}
    title = plain(feed.get("title"), detail.get("type"), FEED_TITLE_MAX)
    parsed = ParsedFeed(title=title, format=result.get("version") or "")
    base = passed["content-location"]
    raw_entries = result.get("entries", [])[: max_entries * 2]
    entries = _unique(e for e in (_xml_entry(raw, base, i) for i, raw in enumerate(raw_entries)) if e)
    parsed.entries = _newest(entries, max_entries)
    if result.get("bozo"):
        bozo = result.get("bozo_exception")
        text = f"{type(bozo).__name__}: {bozo}" if bozo else "malformed feed"
        # The document parsed; only its declared type or encoding was off.
        benign = isinstance(bozo, (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType))
        parsed.problem = _problem(("warning: " if benign else "") + text)
    if not parsed.entries and not parsed.format:
        if parsed.title:  # something feed-like (e.g. CDF) without items
            parsed.problem = parsed.problem or "unrecognized feed format: no entries found"
        else:
            parsed.problem = _not_a_feed(body, headers, parsed.problem, base)
    return parsed


def _not_a_feed(body: bytes, headers: dict[str, str], bozo: str | None, base: str) -> str:
    ctype = headers.get("content-type", "").split(";")[0].strip().lower()
    head = body[:2048].lstrip().lower()
    if "html" in ctype or head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        found = _feed_links(body[:200_000])
        hint = f"; the page links to a feed at {urljoin(base, found[0])}" if found else ""
        return _problem("not a feed: the server sent an HTML page" + (f" ({ctype})" if ctype else "") + hint)
    return _problem("not a feed" + (f": {bozo}" if bozo else "") + (f" ({ctype})" if ctype else ""))


class _FeedLinkFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "link" and "alternate" in a.get("rel", "").lower().split() and a.get("href"):
            if any(t in a.get("type", "").lower() for t in ("rss", "atom", "feed+json")):
                self.hrefs.append(a["href"])


def _feed_links(body: bytes) -> list[str]:
    """Feed URLs an HTML page advertises with <link rel="alternate" type="application/rss+xml">."""
    finder = _FeedLinkFinder()
    try:
        finder.feed(body.decode("utf-8", "replace"))
    except Exception:  # noqa: BLE001 - lenient parser on hostile input
        pass
    return [clean_text(h, LINK_MAX, markup=False) for h in finder.hrefs]


def _xml_entry(raw: dict[str, Any], base: str, position: int) -> ParsedEntry | None:
    title_detail = raw.get("title_detail") or {}
    title = plain(raw.get("title"), title_detail.get("type"), TITLE_MAX)
    # The rel="alternate" link is the entry's page; feedparser's "link" can be an enclosure when that
    # came first in the document.
    alternates = [c.get("href") for c in raw.get("links") or [] if c.get("rel", "alternate") == "alternate"]
    link = next(filter(None, (_safe_link(href, base) for href in alternates)), "") or _safe_link(
        raw.get("link"), base
    )
    summary = ""
    if raw.get("summary"):
        summary = plain(raw.get("summary"), (raw.get("summary_detail") or {}).get("type"), SUMMARY_MAX)
    elif raw.get("content"):
        first = raw["content"][0]
        summary = plain(first.get("value"), first.get("type"), SUMMARY_MAX)
    published = None
    date_raw = ""
    for key in ("published", "updated", "created"):
        parsed_time = dict.get(raw, f"{key}_parsed")  # plain get: no feedparser fallback (and its warning)
        if parsed_time:
            published = _struct_to_datetime(parsed_time)
            date_raw = str(raw.get(key) or "")
            if published:
                break
    if not (title or link or summary):
        return None
    guid = clean_text(str(raw.get("id") or ""), LINK_MAX, markup=False)
    return ParsedEntry(
        identity=_identity(guid, link, title, date_raw, summary),
        title=title,
        link=link,
        summary=summary,
        published=published,
        position=position,
    )


def _struct_to_datetime(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _newest(entries: list[ParsedEntry], limit: int) -> list[ParsedEntry]:
    """At most ``limit`` entries, the newest by date (undated ones count as new), in document order."""
    if len(entries) <= limit:
        return entries
    latest = datetime.max.replace(tzinfo=UTC)
    ranked = sorted(entries, key=lambda e: e.published or latest, reverse=True)[:limit]
    return sorted(ranked, key=lambda e: e.position)


def _unique(entries: Iterable[ParsedEntry]) -> list[ParsedEntry]:
    seen: set[str] = set()
    out = []
    for entry in entries:
        if entry.identity not in seen:
            seen.add(entry.identity)
            out.append(entry)
    return out


# -- JSON Feed (https://jsonfeed.org/version/1.1) ----------------------------------------------------------


def _parse_json_feed(body: bytes, url: str, max_entries: int) -> ParsedFeed:
    try:
        doc = json.loads(body.decode("utf-8-sig", errors="replace"))
    except (ValueError, RecursionError) as exc:
        return ParsedFeed(title="", problem=_problem(f"not a feed: invalid JSON ({exc})"))
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        return ParsedFeed(title="", problem="not a feed: JSON without a JSON Feed 'items' list")
    version = str(doc.get("version") or "")
    parsed = ParsedFeed(
        title=plain(_str(doc.get("title")), "text/plain", FEED_TITLE_MAX),
        format="json" + version.rstrip("/").rsplit("/", 1)[-1] if "jsonfeed.org" in version else "json",
    )
    if "jsonfeed.org" not in version:
        parsed.problem = "JSON Feed without a jsonfeed.org version; read its items anyway"
    base = _safe_link(doc.get("home_page_url"), url) or url
    entries = []
    for position, item in enumerate(doc["items"][: max_entries * 2]):
        if isinstance(item, dict):
            entry = _json_entry(item, base, position)
            if entry:
                entries.append(entry)
    parsed.entries = _newest(_unique(entries), max_entries)
    return parsed


_JSON_SUMMARY_FIELDS = (
    ("summary", "text/plain"),
    ("content_text", "text/plain"),
    ("content_html", "text/html"),
)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _json_entry(item: Mapping[str, Any], base: str, position: int) -> ParsedEntry | None:
    title = plain(_str(item.get("title")), "text/plain", TITLE_MAX)
    link = _safe_link(item.get("url"), base) or _safe_link(item.get("external_url"), base)
    summary = ""
    for field, ctype in _JSON_SUMMARY_FIELDS:
        if _str(item.get(field)):
            summary = plain(item[field], ctype, SUMMARY_MAX)
            break
    date_raw = _str(item.get("date_published")) or _str(item.get("date_modified"))
    published = _iso_datetime(date_raw)
    if not (title or link or summary):
        return None
    raw_id = item.get("id")
    guid = clean_text(str(raw_id), LINK_MAX, markup=False) if type(raw_id) in (str, int) else ""
    return ParsedEntry(
        identity=_identity(guid, link, title, date_raw, summary),
        title=title,
        link=link,
        summary=summary,
        published=published,
        position=position,
    )


def _iso_datetime(value: str) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        return when.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
