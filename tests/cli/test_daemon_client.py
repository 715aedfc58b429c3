"""assistant.client.daemon: the one daemon client (JSON calls, chat turns, the notification stream with its
reconnect loop) against the real app served by uvicorn on 127.0.0.1 (fake model); and the one SSE parser it
reads the streams with (assistant.core.openai_stream)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from assistant.app import create_app
from assistant.client.daemon import (
    DaemonClient,
    DaemonError,
    DaemonUnreachable,
    daemon_base_url,
    error_message,
)
from assistant.config import Settings, load_settings
from assistant.core.errors import BackendError
from assistant.core.openai_stream import Event, delta_text, iter_chunks, parse_sse
from assistant.llm.types import ChatMessage
from assistant.notify.models import Notification
from assistant.services import Services, build_services
from tests.daemon import free_port
from tests.fakes import FakeLLM, FixedClock
from tests.server import serve_app


def echo(messages: list[ChatMessage]) -> str:
    return f"You said: {messages[-1].content}"


def make_settings(tmp_path: Path, **sections: object) -> Settings:
    base: dict[str, object] = {
        "memory": {"enabled": False}, "scheduler": {"enabled": False}, "notify": {"desktop": False},
    }  # fmt: skip
    return load_settings(None, data_dir=tmp_path / "data", **(base | sections))


@pytest.fixture
def daemon_services(tmp_path: Path) -> Services:
    return build_services(make_settings(tmp_path), clock=FixedClock(), llm=FakeLLM(echo))


@contextmanager
def serve_on(app: object, port: int) -> Iterator[str]:
    """Like tests.server.serve_app, on a given port (a restarted daemon comes back where it was), and
    without waiting more than a second at shutdown for a notification stream a test left open."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        thread.join(0.01)  # polling a starting server, not waiting for time to pass
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture
def url(daemon_services: Services) -> Iterator[str]:
    with serve_on(create_app(daemon_services), free_port()) as base:
        yield base


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition never held")
        time.sleep(0.01)  # polling another thread's progress, not waiting for time to pass


class Follower:
    """Follows a client's notifications() in a thread, collecting them in a queue."""

    def __init__(self, client: DaemonClient, retry: float = 0.1) -> None:
        self.stop = threading.Event()
        self.got: queue.Queue[Notification] = queue.Queue()
        self.thread = threading.Thread(target=self._run, args=(client, retry), daemon=True)
        self.thread.start()

    def _run(self, client: DaemonClient, retry: float) -> None:
        for note in client.notifications(self.stop, retry=retry):
            self.got.put(note)

    def next(self) -> Notification:
        return self.got.get(timeout=10)

    def close(self) -> None:
        self.stop.set()


# --- reading streams ----------------------------------------------------------------------------------


def test_parse_sse() -> None:
    lines = [": ping", "id: 7", "event: notification", 'data: {"a":', "data: 1}", "", "", "data: plain", ""]
    assert list(parse_sse(iter(lines))) == [Event("7", "notification", '{"a":\n1}'), Event("7", "message", "plain")]
    assert list(parse_sse(["data:no space\r", "data: unterminated"])) == [
        Event("", "message", "no space\nunterminated")
    ]


def test_openai_chunks_stop_at_done() -> None:
    lines = ['data: {"choices": [{"delta": {"content": "Hi"}}]}', "", ": ping", "",
             'data: {"choices": [{"delta": {}}], "usage": {"completion_tokens": 1}}', "",
             "data: [DONE]", "", 'data: {"never": "read"}', ""]  # fmt: skip
    chunks = list(iter_chunks(lines))
    assert [delta_text(c) for c in chunks] == ["Hi", ""]
    assert chunks[1]["usage"] == {"completion_tokens": 1}
    with pytest.raises(ValueError):
        list(iter_chunks(["data: {not json", ""]))


def test_error_message() -> None:
    body = {"error": {"message": "no skill named 'x'", "type": "not_found_error", "code": "not_found"}}
    assert error_message(httpx.Response(404, json=body)) == "no skill named 'x'"
    assert error_message(httpx.Response(502, text="Bad Gateway")) == "HTTP 502 from the daemon: Bad Gateway"


def test_notification_from_json_is_the_inverse_of_to_json() -> None:
    n = Notification(7, "Tea", "Green.", "test", True, {"k": 1}, "2026-01-15T12:00:00.000+00:00")
    assert Notification.from_json(n.to_json()) == n
    loose = Notification.from_json({"title": "Hi", "urgent": "yes", "data": [1]}, default_id=3)
    assert loose == Notification(3, "Hi", "", "", False, None, "")


# --- requests -----------------------------------------------------------------------------------------


def test_base_url_from_settings(tmp_path: Path) -> None:
    assert daemon_base_url(make_settings(tmp_path, server={"host": "0.0.0.0", "port": 9000})) == (
        "http://127.0.0.1:9000"
    )
    assert daemon_base_url(make_settings(tmp_path, server={"host": "::1", "port": 9000})) == "http://[::1]:9000"


def test_call_answers_json_or_the_daemons_message(url: str) -> None:
    with DaemonClient(url) as client:
        assert client.healthy()
        listing = client.call("GET", "/api/skills")
        assert isinstance(listing["data"], list)
        assert client.skills() == listing["data"]
        posted = client.call("POST", "/api/notifications", json={"title": "Hi", "source": "t"})
        assert client.call("GET", f"/api/notifications/{posted['id']}")["title"] == "Hi"
        assert client.call("GET", "/api/notifications", params={"limit": 1})["limit"] == 1
        with pytest.raises(DaemonError, match=r"^no notification 999$"):
            client.call("GET", "/api/notifications/999")
        with pytest.raises(DaemonError, match="invalid request: title"):
            client.call("POST", "/api/notifications", json={"body": "no title"})


def test_token_from_settings_and_refusal(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, server={"api_token": "s3cret"})
    services = build_services(settings, clock=FixedClock(), llm=FakeLLM(echo))
    with serve_app(create_app(services)) as url:
        port = int(url.rsplit(":", 1)[1])
        with DaemonClient(url) as anonymous:
            with pytest.raises(DaemonError, match="missing or wrong API token"):
                anonymous.call("GET", "/api/skills")
            assert anonymous.skills() == []
            assert list(anonymous.notifications(threading.Event())) == []  # refused: it gives up, no retrying
        mine = make_settings(tmp_path, server={"api_token": "s3cret", "host": "0.0.0.0", "port": port})
        with DaemonClient.from_settings(mine) as client:
            assert client.url == url
            assert client.ask("hi") == "You said: hi"


def test_unreachable_daemon() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with DaemonClient(url) as client:
        with pytest.raises(DaemonUnreachable) as info:
            client.call("GET", "/api/skills")
        assert info.value.message == f"the daemon is not running at {url} (start it with `assistant serve`)"
        with pytest.raises(DaemonUnreachable):
            list(client.stream("hi"))
        assert not client.healthy()
        assert client.skills() == []


# --- chat ---------------------------------------------------------------------------------------------


def test_stream_and_ask_keep_the_conversation(url: str) -> None:
    with DaemonClient(url) as client:
        assert "".join(client.stream("first")) == "You said: first"
        cid = client.conversation_id
        assert cid and cid.startswith("conv-")
        assert client.ask("second") == "You said: second"
        assert client.conversation_id == cid
        turns = client.call("GET", f"/api/conversations/{cid}")["messages"]
        assert [t["content"] for t in turns] == ["first", "You said: first", "second", "You said: second"]
        client.new_conversation()
        assert list(client.stream("again", max_tokens=1)) == ["You"]
        assert client.conversation_id not in (None, cid)


def test_model_errors_are_daemon_errors(tmp_path: Path) -> None:
    def broken(messages: list[ChatMessage]) -> str:
        raise BackendError("the model fell over")

    services = build_services(make_settings(tmp_path), clock=FixedClock(), llm=FakeLLM(broken))
    with serve_app(create_app(services)) as url, DaemonClient(url) as client:
        with pytest.raises(DaemonError, match="the model fell over"):
            list(client.stream("hi"))  # sent inside the event stream, after the 200
        with pytest.raises(DaemonError, match="the model fell over"):
            client.ask("hi")


# --- notifications ------------------------------------------------------------------------------------


def test_notifications_arrive_as_the_one_notification_type(url: str, daemon_services: Services) -> None:
    with DaemonClient(url) as client:
        follower = Follower(client)
        try:
            wait_until(lambda: daemon_services.notifier.broadcaster.subscriber_count == 1)
            sent = client.call(
                "POST", "/api/notifications", json={"title": "Tea", "body": "Kettle boiled", "urgent": True}
            )
            got = follower.next()
            assert isinstance(got, Notification)
            assert got == Notification.from_json(sent) and got.id == sent["id"] and got.urgent
            assert follower.got.empty()
        finally:
            follower.close()


def test_stop_ends_the_stream_at_its_next_line(url: str, daemon_services: Services) -> None:
    with DaemonClient(url) as client:
        follower = Follower(client)
        wait_until(lambda: daemon_services.notifier.broadcaster.subscriber_count == 1)
        follower.close()
        daemon_services.notifier.notify("Late", "", source="t")
        follower.thread.join(10)
        assert not follower.thread.is_alive()
        assert follower.got.empty()


def test_turned_off_notifications_end_the_stream(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, notify={"enabled": False})
    services = build_services(settings, clock=FixedClock(), llm=FakeLLM(echo))
    with serve_app(create_app(services)) as url, DaemonClient(url) as client:
        assert list(client.notifications(threading.Event())) == []  # 503: given up at once


def test_reconnects_after_a_restart_and_misses_nothing(tmp_path: Path) -> None:
    """The daemon goes away and comes back on the same port; what it released meanwhile is replayed
    (Last-Event-ID), once, in order, and what the client already had is not sent again."""
    settings, port = make_settings(tmp_path), free_port()
    first = build_services(settings, clock=FixedClock(), llm=FakeLLM(echo))
    with serve_on(create_app(first), port) as url:
        client = DaemonClient(url)
        follower = Follower(client, retry=0.1)
        wait_until(lambda: first.notifier.broadcaster.subscriber_count == 1)
        first.notifier.notify("one", "", source="t")
        assert follower.next().title == "one"
    try:
        second = build_services(settings, clock=FixedClock(), llm=FakeLLM(echo))
        # Released while no daemon was listening: the client can only get these by asking for them.
        second.notifier.notify("two", "", source="t")
        second.notifier.notify("three", "", source="t")
        with serve_on(create_app(second), port):
            assert [follower.next().title for _ in range(2)] == ["two", "three"]
            second.notifier.notify("four", "", source="t")
            assert follower.next().title == "four"
            assert follower.got.empty()
    finally:
        follower.close()
        client.close()
