"""The in-process SSE broadcaster: thread-safe publish, and a slow subscriber is cut off, not blocking."""

from __future__ import annotations

import asyncio
import threading

import pytest

from assistant.notify import sse
from assistant.notify.models import Notification


def note(i: int) -> Notification:
    return Notification(i, f"t{i}", "b", "test", False, None, "2026-01-15T12:00:00.000+00:00")


def test_publish_from_another_thread_reaches_every_subscriber() -> None:
    async def main() -> list[list[int]]:
        b = sse.Broadcaster()
        subs = [b.subscribe(), b.subscribe()]
        t = threading.Thread(target=lambda: [b.publish(note(i), i) for i in (1, 2, 3)])
        t.start()
        t.join()
        out = []
        for s in subs:
            got = [await asyncio.wait_for(s.get(), 5) for _ in range(3)]
            out.append([item[1] for item in got if item is not None])
        b.unsubscribe(subs[0])
        assert b.subscriber_count == 1
        b.close()
        assert await asyncio.wait_for(subs[1].get(), 5) is None  # close() ends open streams
        return out

    assert asyncio.run(main()) == [[1, 2, 3], [1, 2, 3]]


def test_a_subscriber_that_falls_behind_is_ended(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse, "QUEUE_MAX", 3)

    async def main() -> list[object]:
        b = sse.Broadcaster()
        s = b.subscribe()
        for i in range(1, 6):
            b.publish(note(i), i)
        await asyncio.sleep(0)  # let the loop run the queued call_soon_threadsafe callbacks
        items = []
        while True:
            item = await asyncio.wait_for(s.get(), 5)
            items.append(None if item is None else item[1])
            if item is None:
                return items

    items = asyncio.run(main())
    assert items == [1, 2, 3, None]  # a contiguous run, then the end marker (it reconnects and replays)
