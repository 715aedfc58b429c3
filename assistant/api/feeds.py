"""/api/feeds: subscribe, list, unsubscribe, refresh, read entries."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from assistant.api.deps import FeedsDep
from assistant.api.limits import CheckedJSONRoute, FeedId
from assistant.api.links import links_to_each, with_links

router = APIRouter(prefix="/api/feeds", route_class=CheckedJSONRoute)


class SubscribeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048, examples=["https://example.com/feed.xml"])
    title: str | None = Field(None, max_length=200)
    refresh: bool = Field(True, description="fetch the feed now and return what happened")


@router.get("")
def list_feeds(feeds: FeedsDep) -> dict[str, Any]:
    return {"data": [f.to_json() for f in feeds.list()]}


_FEED_ROUTES = [
    ("GET", "/api/feeds/{feed_id}"),
    ("GET", "/api/feeds/{feed_id}/entries"),
    ("POST", "/api/feeds/{feed_id}/refresh"),
    ("DELETE", "/api/feeds/{feed_id}"),
]


@router.post(
    "",
    status_code=201,
    responses=with_links(
        201,
        "The feed, and the first fetch",
        **links_to_each(_FEED_ROUTES, "feed_id", "$response.body#/feed/id"),
    ),
)
def subscribe(body: SubscribeRequest, feeds: FeedsDep) -> dict[str, Any]:
    feed = feeds.subscribe(body.url, body.title)
    result = feeds.refresh(feed.id) if body.refresh else None
    return {
        "feed": feeds.get(feed.id).to_json(),
        "fetch": result.to_json() if result else None,
    }


@router.post("/refresh")
def refresh_all(feeds: FeedsDep) -> dict[str, Any]:
    return {"data": [r.to_json() for r in feeds.refresh_all()]}


@router.get("/entries")
def latest_entries(feeds: FeedsDep, limit: Annotated[int, Query(ge=1, le=500)] = 20) -> dict[str, Any]:
    return {"data": [e.to_json() for e in feeds.latest_entries(limit)]}


@router.get("/{feed_id}")
def get_feed(feed_id: FeedId, feeds: FeedsDep) -> dict[str, Any]:
    return feeds.get(feed_id).to_json()


@router.delete("/{feed_id}")
def unsubscribe(feed_id: FeedId, feeds: FeedsDep) -> dict[str, Any]:
    feeds.unsubscribe(feed_id)
    return {"id": feed_id, "deleted": True}


@router.post("/{feed_id}/refresh")
def refresh_one(feed_id: FeedId, feeds: FeedsDep) -> dict[str, Any]:
    return feeds.refresh(feed_id).to_json()


@router.get("/{feed_id}/entries")
def feed_entries(
    feed_id: FeedId, feeds: FeedsDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> dict[str, Any]:
    return {"data": [e.to_json() for e in feeds.entries(feed_id, limit)]}
