"""Feeds: subscribe, fetch (httpx), parse (feedparser / JSON Feed), store (SQLite) and read entries."""

from assistant.feeds.models import Feed, FeedEntry, FetchResult
from assistant.feeds.service import FeedService, build_feeds

__all__ = ["Feed", "FeedEntry", "FeedService", "FetchResult", "build_feeds"]
