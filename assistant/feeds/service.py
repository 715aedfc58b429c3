"""FeedService: subscribe, refresh (fetch + parse + store), read entries. Skills code against it."""

from __future__ import annotations

import builtins
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from assistant.core.clock import Clock
from assistant.core.errors import BadRequest, NotFound
from assistant.core.text import FEED_TITLE_MAX, clean_text
from assistant.feeds.fetch import FeedFetcher, FetchError
from assistant.feeds.models import Feed, FeedEntry, FetchResult
from assistant.feeds.parse import parse_document
from assistant.feeds.store import FeedStore

if TYPE_CHECKING:
    from assistant.config import Settings

log = logging.getLogger(__name__)

_CONSUMER_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
ERROR_MAX = 500


class FeedService:
    def __init__(
        self,
        store: FeedStore,
        fetcher: FeedFetcher,
        clock: Clock,
        *,
        max_entries_per_feed: int = 500,
        refresh_workers: int = 4,
    ) -> None:
        self.store = store
        self.fetcher = fetcher
        self.clock = clock
        self.max_entries_per_feed = max_entries_per_feed
        self.refresh_workers = refresh_workers

    def close(self) -> None:
        self.fetcher.close()
        self.store.close()

    # -- subscriptions ---------------------------------------------------------------------------------------

    def subscribe(self, url: str, title: str | None = None) -> Feed:
        """Add a feed (no fetch here, only a DNS lookup to refuse private addresses; call refresh).
        Subscribing to a known URL returns that feed."""
        url = self.fetcher.check_destination(url)
        clean_title = clean_text(title, FEED_TITLE_MAX, markup=False) if title else None
        feed_id, _ = self.store.add_feed(url, clean_title or None, self.clock.now())
        return self.get(feed_id)

    def unsubscribe(self, feed_id: int) -> None:
        if not self.store.delete_feed(feed_id):
            raise NotFound(f"no feed with id {feed_id}")

    def get(self, feed_id: int) -> Feed:
        feed = self.store.get_feed(feed_id)
        if feed is None:
            raise NotFound(f"no feed with id {feed_id}")
        return feed

    def list(self) -> list[Feed]:
        return self.store.list_feeds()

    # -- fetching --------------------------------------------------------------------------------------------

    def refresh(self, feed_id: int) -> FetchResult:
        """Fetch one feed and store its new entries. NotFound for an unknown id; a bad feed is a result."""
        return self._refresh_feed(self.get(feed_id))

    def refresh_all(self) -> builtins.list[FetchResult]:
        """Fetch every feed (a few at once); never raises for a bad feed."""
        feeds = self.list()
        if len(feeds) <= 1 or self.refresh_workers <= 1:
            return [self._refresh_feed(f) for f in feeds]
        with ThreadPoolExecutor(self.refresh_workers, thread_name_prefix="feeds") as pool:
            return list(pool.map(self._refresh_feed, feeds))

    def _refresh_feed(self, feed: Feed) -> FetchResult:
        started = time.monotonic()
        result = FetchResult(feed_id=feed.id, url=feed.url, ok=False)
        try:
            self._fetch_and_store(feed, result)
        except Exception as exc:  # noqa: BLE001 - one bad feed must not stop the others
            log.exception("refreshing feed %s failed", feed.url)
            result.ok = False
            message = f"internal error: {type(exc).__name__}: {exc}"
            result.error = clean_text(message, ERROR_MAX, markup=False)
            try:
                self.store.record_failure(feed.id, self.clock.now(), result.error)
            except Exception:  # noqa: BLE001 - e.g. the feed was deleted meanwhile
                log.exception("could not record the failure of %s", feed.url)
        result.elapsed_ms = int((time.monotonic() - started) * 1000)
        return result

    def _fetch_and_store(self, feed: Feed, result: FetchResult) -> None:
        try:
            doc = self.fetcher.fetch(feed.url, etag=feed.etag, last_modified=feed.last_modified)
        except FetchError as exc:
            result.http_status = exc.status
            result.error = clean_text(exc.message, ERROR_MAX, markup=False)
            self.store.record_failure(feed.id, self.clock.now(), result.error)
            return
        result.http_status = doc.status
        if doc.not_modified:
            result.ok = result.not_modified = True
            self.store.record_not_modified(feed.id, self.clock.now())
            return
        parsed = parse_document(doc.body, doc.url, doc.headers, max_entries=self.max_entries_per_feed)
        problems = [p for p in (doc.problem, parsed.problem) if p]
        result.error = clean_text("; ".join(problems), ERROR_MAX, markup=False) if problems else None
        result.entries_seen = len(parsed.entries)
        result.ok = bool(parsed.entries) or parsed.problem is None or parsed.problem.startswith("warning:")
        if not result.ok and not parsed.entries:
            self.store.record_failure(feed.id, self.clock.now(), result.error or "no entries")
            return
        # Validators only describe a body we read whole; otherwise the next fetch must not get a 304.
        complete = doc.complete
        result.new_entries = self.store.record_entries(
            feed.id,
            feed.url,
            self.clock.now(),
            feed_title=parsed.title,
            entries=parsed.entries,
            problem=result.error,
            etag=doc.etag if complete else None,
            last_modified=doc.last_modified if complete else None,
            keep=self.max_entries_per_feed,
        )

    # -- reading ---------------------------------------------------------------------------------------------

    def latest_entries(self, limit: int = 10) -> builtins.list[FeedEntry]:
        """Newest first across all feeds (by published date; undated entries by when first seen)."""
        return self.store.entries(None, _check_limit(limit))

    def entries(self, feed_id: int, limit: int = 50) -> builtins.list[FeedEntry]:
        self.get(feed_id)
        return self.store.entries(feed_id, _check_limit(limit))

    def unreported_entries(self, consumer: str, limit: int | None = None) -> builtins.list[FeedEntry]:
        """Entries ``consumer`` has not marked reported yet, newest first."""
        checked = None if limit is None else _check_limit(limit)
        return self.store.unreported(_check_consumer(consumer), checked)

    def mark_reported(self, consumer: str, keys: builtins.list[str]) -> None:
        """Durably remember that ``consumer`` reported these entries (unknown keys are kept too)."""
        self.store.mark_reported(_check_consumer(consumer), [str(k) for k in keys], self.clock.now())


def _check_limit(limit: int) -> int:
    if not isinstance(limit, int) or not 0 <= limit < 2**63:  # SQLite's INTEGER
        raise BadRequest("limit must be a non-negative integer below 2**63", code="invalid_limit")
    return limit


def _check_consumer(consumer: str) -> str:
    if not _CONSUMER_RE.match(consumer or ""):
        raise BadRequest("consumer must be 1-64 letters, digits or '_.:-'", code="invalid_consumer")
    return consumer


def build_feeds(settings: Settings, clock: Clock) -> FeedService:
    """The real feed service: SQLite under the data dir and one shared httpx client."""
    cfg = settings.feeds
    fetcher = FeedFetcher(
        timeout=cfg.timeout,
        max_bytes=cfg.max_bytes,
        max_redirects=cfg.max_redirects,
        user_agent=cfg.user_agent,
        max_connections=max(cfg.refresh_workers, 2),
        allowed_networks=cfg.allowed_networks,
    )
    store = FeedStore(settings.data_dir / "feeds.sqlite3")
    return FeedService(
        store,
        fetcher,
        clock,
        max_entries_per_feed=cfg.max_entries_per_feed,
        refresh_workers=cfg.refresh_workers,
    )
