"""The SSE stream on a real uvicorn server: live events, and Last-Event-ID replay of what a client missed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant.app import create_app
from assistant.config import load_settings
from assistant.services import Services, build_services
from tests.fakes import FakeLLM, FixedClock
from tests.server import serve_app

pytestmark = pytest.mark.slow

TOKEN = "sse-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def next_events(lines: Iterator[str], n: int) -> list[dict[str, Any]]:
    """Read n events (SSE fields id/event/data) from a line iterator; comments (pings) are skipped."""
    events: list[dict[str, Any]] = []
    current: dict[str, str] = {}
    for line in lines:
        if line == "":
            if "data" in current:
                events.append({**current, "data": json.loads(current["data"])})
                if len(events) == n:
                    return events
            current = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        current[name] = current[name] + "\n" + value if name in current else value
    raise AssertionError(f"stream ended after {len(events)} of {n} events")


@contextmanager
def running(tmp_path: Path, clock: FixedClock, **notify: object) -> Iterator[tuple[str, Services]]:
    settings = load_settings(
        None,
        data_dir=tmp_path / "data",
        server={"api_token": TOKEN},
        memory={"enabled": False},
        scheduler={"enabled": False},
        notify={"desktop": False, **notify},
    )
    services = build_services(settings, clock=clock, llm=FakeLLM())
    with serve_app(create_app(services)) as url:
        yield url, services


@contextmanager
def stream(url: str, **kwargs: Any) -> Iterator[Iterator[str]]:
    with httpx.Client(timeout=httpx.Timeout(15.0)) as client:
        with client.stream("GET", url + "/api/notifications/stream", **kwargs) as r:
            assert r.status_code == 200, r.read()
            assert r.headers["content-type"].startswith("text/event-stream")
            yield r.iter_lines()


def post(url: str, title: str, **extra: Any) -> int:
    r = httpx.post(url + "/api/notifications", json={"title": title, "body": "b", **extra}, headers=AUTH)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_live_events_then_replay_of_exactly_the_missed_ones(tmp_path: Path) -> None:
    with running(tmp_path, FixedClock()) as (url, _):
        # The browser way: the token in the query string.
        with stream(url, params={"token": TOKEN}) as lines:
            ids = [post(url, f"n{i}") for i in range(1, 4)]
            got = next_events(lines, 3)
        assert [e["id"] for e in got] == [str(i) for i in ids]
        assert all(e["event"] == "notification" for e in got)
        assert got[0]["data"] == {
            "id": ids[0],
            "title": "n1",
            "body": "b",
            "source": "api",
            "urgent": False,
            "data": None,
            "created_at": "2026-01-15T12:00:00.000+00:00",
        }
        # Disconnected: two more arrive meanwhile.
        missed = [post(url, "n4"), post(url, "n5", urgent=True)]
        with stream(url, headers={**AUTH, "Last-Event-ID": got[-1]["id"]}) as lines:
            replayed = next_events(lines, 2)
            assert [e["data"]["id"] for e in replayed] == missed
            assert replayed[1]["data"]["urgent"] is True
            live = post(url, "n6")  # then live ones, with no duplicate of the replayed ones in between
            assert [e["data"]["id"] for e in next_events(lines, 1)] == [live]
        # The query form of Last-Event-ID, for EventSource polyfills that cannot send the header.
        with stream(url, params={"token": TOKEN, "last_event_id": str(missed[0])}) as lines:
            assert [e["data"]["id"] for e in next_events(lines, 2)] == [missed[1], live]


def test_replay_includes_a_notification_released_after_newer_ones(tmp_path: Path) -> None:
    """Quiet hours hold a non-urgent notification while a newer urgent one goes out: a client that saw the
    urgent one (the higher id) still gets the held one when it is released."""
    clock = FixedClock(datetime(2026, 1, 15, 12, 0, tzinfo=UTC))
    with running(tmp_path, clock, quiet_hours="11:00-13:00") as (url, services):
        with stream(url, headers=AUTH) as lines:
            held = post(url, "calm")
            urgent = post(url, "alarm", urgent=True)
            first = next_events(lines, 1)
        assert [e["data"]["id"] for e in first] == [urgent] and held < urgent
        clock.set(datetime(2026, 1, 15, 13, 0, tzinfo=UTC))
        services.notifier.deliver_due()  # what the delivery thread does on its next pass
        with stream(url, headers={**AUTH, "Last-Event-ID": str(urgent)}) as lines:
            assert [e["data"]["id"] for e in next_events(lines, 1)] == [held]
            later = post(url, "after")
            assert [e["data"]["id"] for e in next_events(lines, 1)] == [later]


def test_concurrent_posts_reach_a_subscriber_once_each_in_release_order(tmp_path: Path) -> None:
    import threading

    with running(tmp_path, FixedClock()) as (url, services):
        with stream(url, headers=AUTH) as lines:
            posted: list[int] = []
            lock = threading.Lock()

            def worker(k: int) -> None:
                for i in range(15):
                    nid = services.notifier.notify(f"w{k}-{i}", "b", source="test").id
                    with lock:
                        posted.append(nid)

            threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            got = [e["data"]["id"] for e in next_events(lines, 60)]
        assert sorted(got) == sorted(posted) and len(set(got)) == 60
        order = [n.id for n, _ in services.notifier.outbox.released_after(0, 1000)]
        assert got == order


SERVER_CHILD = r"""
import sys, uvicorn
from assistant.app import create_app
from assistant.config import load_settings
from assistant.services import build_services
from tests.fakes import FakeLLM
s = load_settings(None, data_dir=sys.argv[1], memory={"enabled": False}, scheduler={"enabled": False},
                  notify={"desktop": False})
uvicorn.run(create_app(build_services(s, llm=FakeLLM())), host="127.0.0.1", port=int(sys.argv[2]),
            log_level="info")
"""


def test_sigterm_with_a_client_connected_ends_the_stream_cleanly(tmp_path: Path) -> None:
    """The daemon stops promptly on SIGTERM while a client is subscribed, and the stream ends properly."""
    import os
    import signal
    import subprocess
    import sys

    from tests.daemon import free_port, wait_healthy

    port = free_port()
    log_path = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    repo = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = str(repo)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVER_CHILD, str(tmp_path / "data"), str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=repo,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log_path, timeout=60)
        with httpx.Client(timeout=15) as client, client.stream("GET", url + "/api/notifications/stream") as r:
            lines = r.iter_lines()
            client.post(url + "/api/notifications", json={"title": "before shutdown"})
            assert next_events(lines, 1)[0]["data"]["title"] == "before shutdown"
            proc.send_signal(signal.SIGTERM)
            rest = list(lines)  # the server ends the stream: iteration stops instead of hanging
        # uvicorn shuts down, runs the lifespan's end (services.close), then re-raises the signal it caught,
        # so -SIGTERM is the normal exit code; the log shows whether the shutdown was the graceful one.
        assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
        assert not [line for line in rest if line.startswith("data:")]
        log_text = log_path.read_text()
        assert "Application shutdown complete." in log_text, log_text
        assert "ASGI callable returned without completing response" not in log_text
        assert "Traceback" not in log_text, log_text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
