"""In-process broadcaster for live SSE subscribers.

publish() may be called from any thread; each subscriber is an asyncio queue on its event loop. A
subscriber that falls too far behind is cut off (its stream ends) and catches up by reconnecting with
Last-Event-ID, which replays from the outbox.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

from assistant.notify.models import Notification

QUEUE_MAX = 1000


@dataclass(eq=False)
class Subscription:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[tuple[Notification, int] | None] = field(default_factory=asyncio.Queue)
    overflowed: bool = False

    def _put(self, item: tuple[Notification, int] | None) -> None:
        if self.overflowed:
            return
        if item is not None and self.queue.qsize() >= QUEUE_MAX:
            # Keep what is queued (a contiguous run), end the stream after it: the client reconnects with
            # the last id it got and the outbox replays the rest.
            self.overflowed = True
            item = None
        self.queue.put_nowait(item)

    async def get(self) -> tuple[Notification, int] | None:
        """The next (notification, seq), or None when the stream should end."""
        return await self.queue.get()


class Broadcaster:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self._lock = threading.Lock()

    def subscribe(self) -> Subscription:
        sub = Subscription(asyncio.get_running_loop())
        with self._lock:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subs)

    def publish(self, notification: Notification, seq: int) -> None:
        self._send((notification, seq))

    def close(self) -> None:
        """End every open stream."""
        self._send(None)

    def _send(self, item: tuple[Notification, int] | None) -> None:
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            try:
                sub.loop.call_soon_threadsafe(sub._put, item)
            except RuntimeError:  # its loop is closed
                self.unsubscribe(sub)
