"""/api/notifications: history, posting by hand, and the live SSE stream with Last-Event-ID replay."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from assistant.api.deps import NotifierDep
from assistant.api.limits import SQLITE_INT_MAX, CheckedJSONRoute, NotificationId, Offset
from assistant.api.links import link_to, with_links
from assistant.core.errors import BadRequest, NotFound
from assistant.notify.models import BODY_MAX, SOURCE_MAX, TITLE_MAX, Notification
from assistant.notify.sse import Subscription

router = APIRouter(prefix="/api/notifications", route_class=CheckedJSONRoute)

REPLAY_PAGE = 200
PING_SECONDS = 15
SHUTDOWN_GRACE_SECONDS = 1.0


class NotificationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=TITLE_MAX)
    body: str = Field("", max_length=BODY_MAX)
    source: str = Field("api", min_length=1, max_length=SOURCE_MAX)
    urgent: bool = False
    data: dict[str, Any] | None = None


def parse_last_event_id(header: str | None, query: str | None) -> int | None:
    raw = header if header not in (None, "") else query
    if raw in (None, ""):
        return None
    try:
        value = int(str(raw).strip())
    except ValueError:
        value = -1
    if not 0 <= value <= SQLITE_INT_MAX:
        shown = raw if len(str(raw)) <= 40 else str(raw)[:40] + "..."
        raise BadRequest(
            f"Last-Event-ID must be a notification id (an integer from 0 to {SQLITE_INT_MAX}), got {shown!r}",
            code="invalid_last_event_id",
        )
    return value


async def _next_or_shutdown(
    subscription: Subscription, shutdown: anyio.Event
) -> tuple[Notification, int] | None:
    """The next live item, or None when the stream should end (server shutdown, client too slow)."""
    getter = asyncio.ensure_future(subscription.get())
    stopper = asyncio.ensure_future(shutdown.wait())
    try:
        await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in (getter, stopper):
            if not future.done():
                future.cancel()
    return getter.result() if getter.done() and not getter.cancelled() else None


def _event(notification: Notification) -> ServerSentEvent:
    return ServerSentEvent(
        data=json.dumps(notification.to_json(), ensure_ascii=False),
        event="notification",
        id=str(notification.id),
    )


@router.get("")
def list_notifications(
    notifier: NotifierDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    items = notifier.history(limit, offset)
    return {
        "data": [s.to_json() for s in items],
        "total": notifier.outbox.count(),
        "limit": limit,
        "offset": offset,
        "channels": {
            name: {
                "pending": notifier.outbox.pending_count(name),
                "retry_at": (r.isoformat() if (r := notifier.retry_at(name)) else None),
            }
            for name in notifier.channel_names
        },
    }


@router.post(
    "",
    status_code=201,
    responses=with_links(
        201,
        "The stored notification",
        GetNotification=link_to(
            "/api/notifications/{notification_id}", "GET", notification_id="$response.body#/id"
        ),
    ),
)
def post_notification(payload: NotificationIn, notifier: NotifierDep) -> dict[str, Any]:
    notification = notifier.notify(
        payload.title, payload.body, source=payload.source, urgent=payload.urgent, data=payload.data
    )
    return notification.to_json()


@router.get("/stream")
async def stream_notifications(
    request: Request,
    notifier: NotifierDep,
    last_event_id: Annotated[str | None, Query(description="for clients that cannot send the header")] = None,
) -> EventSourceResponse:
    last_id = parse_last_event_id(request.headers.get("last-event-id"), last_event_id)
    # Where this client stands in release order: after its last event, or (a new client) after everything
    # released before it connected. Fixing it here, before the response starts, means nothing released
    # while the stream is being set up is missed.
    outbox = notifier.outbox
    if last_id is None:
        start = await run_in_threadpool(outbox.last_seq)
    else:
        start = await run_in_threadpool(outbox.seq_after_id, last_id)

    async def events() -> AsyncIterator[ServerSentEvent]:
        # Subscribe before reading the outbox; the sequence number drops what both the replay and the
        # live queue carry.
        subscription = notifier.broadcaster.subscribe()
        try:
            seen = start
            while True:
                page = await run_in_threadpool(outbox.released_after, seen, REPLAY_PAGE)
                for notification, seq in page:
                    yield _event(notification)
                    seen = seq
                if len(page) < REPLAY_PAGE:
                    break
            while True:
                item = await _next_or_shutdown(subscription, shutdown)
                if item is None:
                    return  # server closing, or this client fell behind: it reconnects and replays
                notification, seq = item
                if seq <= seen:
                    continue
                seen = seq
                yield _event(notification)
        finally:
            notifier.broadcaster.unsubscribe(subscription)

    # On server shutdown sse-starlette sets ``shutdown``; the stream then ends cleanly instead of being
    # cancelled mid-response.
    shutdown = anyio.Event()
    return EventSourceResponse(
        events(), ping=PING_SECONDS, shutdown_event=shutdown, shutdown_grace_period=SHUTDOWN_GRACE_SECONDS
    )


@router.get("/{notification_id}")
def get_notification(notification_id: NotificationId, notifier: NotifierDep) -> dict[str, Any]:
    status = notifier.get(notification_id)
    if status is None:
        raise NotFound(f"no notification {notification_id}")
    return status.to_json()
