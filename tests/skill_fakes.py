"""Fakes for skill and scheduler tests: a feed service with the FeedService contract, a memory with the
MemoryService ``add``, and helpers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from assistant.feeds.in_memory import InMemoryFeeds
from assistant.feeds.models import FeedEntry


def entry(n: int, title: str, *, feed_id: int = 1, feed_title: str = "Example News", link: str | None = None,
          published: datetime | None = None) -> FeedEntry:  # fmt: skip
    return FeedEntry(
        key=f"k{feed_id}-{n}",
        feed_id=feed_id,
        feed_url=f"https://feeds{feed_id}.example/rss.xml",
        feed_title=feed_title,
        title=title,
        link=link if link is not None else f"https://news{feed_id}.example/story/{n}",
        summary=f"summary of {title}",
        published=published or datetime(2026, 1, 15, 6, 0, tzinfo=UTC) + timedelta(minutes=n),
    )


class FakeFeeds(InMemoryFeeds):
    """The part of assistant.feeds.FeedService that skills use, in memory (the package's InMemoryFeeds),
    recording every mark_reported call."""

    def __init__(self, entries: Iterable[FeedEntry] = ()) -> None:
        super().__init__(entries)  # ``stored``, not ``entries``: FeedService.entries(feed_id, limit) is a method
        self.mark_calls: list[tuple[str, list[str]]] = []

    def add(self, *entries: FeedEntry) -> None:
        self.stored.extend(entries)

    def mark_reported(self, consumer: str, keys: list[str]) -> None:
        with self._lock:
            self.mark_calls.append((consumer, list(keys)))
        super().mark_reported(consumer, keys)


class FakeMemory:
    """The part of memory.MemoryService that skills use (``add``), recording every memory."""

    def __init__(self) -> None:
        self.added: list[dict[str, Any]] = []

    def add(
        self,
        text: str,
        source: str = "note",
        conversation_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        created_at: datetime | None = None,
        provenance: str | None = None,
    ) -> str:
        self.added.append(
            {"text": text, "source": source, "conversation_id": conversation_id, "metadata": metadata,
             "provenance": provenance}
        )
        return str(len(self.added))
