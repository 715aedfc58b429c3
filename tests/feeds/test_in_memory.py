"""InMemoryFeeds: the feed reader skills use, over fixed entries (used by `assistant eval skills`)."""

from __future__ import annotations

from assistant.feeds.in_memory import InMemoryFeeds
from assistant.feeds.service import FeedService
from tests.skill_fakes import entry


def test_newest_first_and_reported_once_per_consumer() -> None:
    feeds = InMemoryFeeds([entry(1, "old"), entry(3, "newest"), entry(2, "middle")])
    assert [e.title for e in feeds.latest_entries(2)] == ["newest", "middle"]
    assert [e.title for e in feeds.unreported_entries("digest")] == ["newest", "middle", "old"]
    feeds.mark_reported("digest", [feeds.latest_entries(1)[0].key])
    assert [e.title for e in feeds.unreported_entries("digest", 1)] == ["middle"]
    assert len(feeds.unreported_entries("seuss")) == 3  # each consumer has its own marks
    feeds.close()


def test_it_has_the_reader_methods_of_the_real_service() -> None:
    import inspect

    for name in ("latest_entries", "unreported_entries", "mark_reported", "close"):
        real = inspect.signature(getattr(FeedService, name))
        mine = inspect.signature(getattr(InMemoryFeeds, name))
        assert list(mine.parameters) == list(real.parameters), name
