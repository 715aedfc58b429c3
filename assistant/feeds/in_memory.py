"""Feeds held in memory: the feed-reader part of FeedService over fixed entries, no store, no network."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import UTC, datetime

from assistant.feeds.models import FeedEntry


class InMemoryFeeds:
    """The feed reader skills use (``assistant.skillkit.api.FeedReader``) over a fixed list of entries held in
    memory: for evaluating skills on fixed headlines (``assistant eval skills``) and for tests."""

    def __init__(self, entries: Iterable[FeedEntry]) -> None:
        self.stored = list(entries)
        self.reported: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def _newest_first(self) -> list[FeedEntry]:
        return sorted(
            self.stored, key=lambda e: e.published or datetime.min.replace(tzinfo=UTC), reverse=True
        )

    def latest_entries(self, limit: int = 10) -> list[FeedEntry]:
        return self._newest_first()[:limit]

    def unreported_entries(self, consumer: str, limit: int | None = None) -> list[FeedEntry]:
        done = self.reported.get(consumer, set())
        fresh = [e for e in self._newest_first() if e.key not in done]
        return fresh if limit is None else fresh[:limit]

    def mark_reported(self, consumer: str, keys: list[str]) -> None:
        with self._lock:
            self.reported.setdefault(consumer, set()).update(keys)

    def close(self) -> None:  # closed with the services, like FeedService
        pass
