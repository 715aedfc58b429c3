"""The values the feed service hands out: Feed, FeedEntry, FetchResult (and what the parser produces)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class FeedEntry:
    """One stored entry. ``key`` is stable across fetches and unique across feeds."""

    key: str
    feed_id: int
    feed_url: str
    feed_title: str
    title: str
    link: str
    summary: str
    published: datetime | None  # aware (UTC) or None when the feed gave no usable date

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["published"] = self.published.isoformat() if self.published else None
        return data


@dataclass
class Feed:
    id: int
    url: str
    title: str
    last_fetched: datetime | None
    last_error: str | None
    etag: str | None
    last_modified: str | None
    entry_count: int
    error_count: int = 0  # consecutive fetches that recorded a problem

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["last_fetched"] = self.last_fetched.isoformat() if self.last_fetched else None
        return data


@dataclass
class FetchResult:
    """What one refresh of one feed did. ``ok`` is False when nothing usable came back."""

    feed_id: int
    url: str
    ok: bool
    not_modified: bool = False
    http_status: int | None = None
    new_entries: int = 0
    entries_seen: int = 0
    error: str | None = None  # the problem recorded on the feed (also set when ok with a partial parse)
    elapsed_ms: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ParsedEntry:
    """An entry as extracted from a document, before it is stored. Text is plain and length-capped.

    ``identity`` is what makes the entry the same one next time: its id/guid, else its link, else a hash of
    title and date. The stored key is a hash of the feed URL and this identity (unique across feeds)."""

    identity: str
    title: str
    link: str
    summary: str
    published: datetime | None
    position: int = 0  # index in the document's entry list (feeds list newest first)


@dataclass
class ParsedFeed:
    title: str
    entries: list[ParsedEntry] = field(default_factory=list)
    problem: str | None = None  # bozo reason, "not a feed", truncated...
    format: str = ""  # feedparser's version ("rss20", "atom10"...) or "json1"


def entry_key(feed_url: str, identity: str) -> str:
    return hashlib.sha256(f"{feed_url}\n{identity}".encode("utf-8", "replace")).hexdigest()[:32]
