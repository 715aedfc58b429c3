"""Delivery to real HTTP receivers on 127.0.0.1 (webhook, ntfy), a real notify-send stand-in, retry backoff."""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from pathlib import Path

import pytest

from assistant.config import Settings, load_settings
from assistant.notify import Notifier, build_notifier
from assistant.notify.channel import backoff_delay
from assistant.notify.desktop import DesktopChannel
from assistant.notify.models import Notification
from tests.fakes import FixedClock
from tests.notify_receiver import Receiver

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def make_settings(tmp_path: Path, **notify: object) -> Settings:
    return load_settings(None, data_dir=tmp_path / "data", notify={"desktop": False, **notify})


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_backoff_doubles_and_is_capped() -> None:
    delays = [backoff_delay(n, 2.0, 900.0).total_seconds() for n in range(0, 12)]
    assert delays == [0, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]
    assert backoff_delay(10_000, 2.0, 900.0) == timedelta(seconds=900)


def test_webhook_posts_the_notification_json(tmp_path: Path, clock: FixedClock, receiver: Receiver) -> None:
    notifier = build_notifier(make_settings(tmp_path, webhook_url=receiver.url + "/hook"), clock)
    try:
        a = notifier.notify("Time", "It is noon.", source="time", data={"skill": "time"})
        b = notifier.notify("Ünïcode ☃", "body", source="api", urgent=True)
        report = notifier.deliver_due()
        assert report.delivered == {"webhook": 2}
        got = receiver.accepted()
        assert [r.path for r in got] == ["/hook", "/hook"]
        assert [r.json() for r in got] == [a.to_json(), b.to_json()]
        assert got[0].json() == {
            "id": a.id,
            "title": "Time",
            "body": "It is noon.",
            "source": "time",
            "urgent": False,
            "data": {"skill": "time"},
            "created_at": "2026-01-15T12:00:00.000+00:00",
        }
        assert [r.headers["x-notification-id"] for r in got] == [str(a.id), str(b.id)]
        status = notifier.get(a.id)
        assert status is not None
        state = status.to_json()["delivery"]["channels"]["webhook"]
        assert state["status"] == "delivered" and state["attempts"] == 1
        assert notifier.deliver_due().delivered == {}
        assert len(receiver.all()) == 2
    finally:
        notifier.close()


def test_webhook_receiver_that_fails_then_recovers_gets_each_exactly_once(
    tmp_path: Path, clock: FixedClock
) -> None:
    with Receiver(fail_first=3) as receiver:
        notifier = build_notifier(
            make_settings(tmp_path, webhook_url=receiver.url, retry_base_seconds=2, retry_max_seconds=900),
            clock,
        )
        try:
            sent = [notifier.notify(f"n{i}", "x", source="test") for i in range(3)]
            schedule = []
            for _ in range(3):  # three failing attempts, each pushing the retry out twice as far
                report = notifier.deliver_due()
                assert report.failed == {"webhook": 1} and report.delivered == {}
                retry_at = notifier.retry_at("webhook")
                assert retry_at is not None
                schedule.append((retry_at - T0).total_seconds())
                clock.set(retry_at - timedelta(milliseconds=1))  # just before: nothing is tried
                before = len(receiver.all())
                notifier.deliver_due()
                assert len(receiver.all()) == before
                clock.set(retry_at)
            assert schedule == [2, 2 + 4, 2 + 4 + 8]
            report = notifier.deliver_due()
            assert report.delivered == {"webhook": 3}
            assert notifier.retry_at("webhook") is None
            accepted = [r.json()["id"] for r in receiver.accepted()]
            assert accepted == [n.id for n in sent]  # each once, in order, nothing lost
            assert len(receiver.all()) == 6  # 3 refused + 3 accepted: no extra hammering
            first = notifier.get(sent[0].id)
            assert first is not None
            assert first.channels[0].attempts == 4 and first.channels[0].status == "delivered"
            clock.advance(hours=1)
            notifier.deliver_due()
            assert len(receiver.all()) == 6
        finally:
            notifier.close()


def test_connection_refused_is_retried_not_dropped(tmp_path: Path, clock: FixedClock) -> None:
    port = closed_port()
    notifier = build_notifier(make_settings(tmp_path, webhook_url=f"http://127.0.0.1:{port}/"), clock)
    try:
        n = notifier.notify("t", "b", source="test")
        report = notifier.deliver_due()
        assert report.failed == {"webhook": 1} and not report.gave_up
        status = notifier.get(n.id)
        assert status is not None
        state = status.channels[0]
        assert state.status == "pending" and state.attempts == 1 and "Connect" in (state.last_error or "")
    finally:
        notifier.close()


def test_refused_message_fails_alone_and_max_attempts_gives_up(tmp_path: Path, clock: FixedClock) -> None:
    with Receiver(fail_first=1, fail_status=400) as receiver:
        notifier = build_notifier(make_settings(tmp_path, webhook_url=receiver.url), clock)
        try:
            bad = notifier.notify("refused", "x", source="test")
            good = notifier.notify("accepted", "x", source="test")
            report = notifier.deliver_due()
            assert report.gave_up == {"webhook": 1} and report.delivered == {"webhook": 1}
            assert notifier.retry_at("webhook") is None  # a refused message does not stop the channel
            assert [r.json()["id"] for r in receiver.accepted()] == [good.id]
            status = notifier.get(bad.id)
            assert status is not None and status.channels[0].status == "failed"
            assert "HTTP 400" in (status.channels[0].last_error or "")
        finally:
            notifier.close()
    with Receiver(fail_first=100, fail_status=503) as receiver:
        notifier = build_notifier(
            make_settings(tmp_path / "b", webhook_url=receiver.url, max_attempts=2), clock
        )
        try:
            n = notifier.notify("t", "b", source="test")
            notifier.deliver_due()
            clock.advance(hours=1)
            report = notifier.deliver_due()
            assert report.gave_up == {"webhook": 1}
            status = notifier.get(n.id)
            assert status is not None and status.channels[0].status == "failed"
            assert status.channels[0].attempts == 2
        finally:
            notifier.close()


def test_ntfy_publishes_body_with_title_and_priority_headers(tmp_path: Path, clock: FixedClock) -> None:
    with Receiver(fail_first=1) as receiver:
        notifier = build_notifier(
            make_settings(tmp_path, ntfy_url=receiver.url + "/my-topic", ntfy_token="tk_secret"), clock
        )
        try:
            calm = notifier.notify("Morning digest", "Three new items.", source="digest")
            loud = notifier.notify("Wetter ☂ für München", "Regen ab 14 Uhr", source="weather", urgent=True)
            long = notifier.notify("Long", "ä" * 5000, source="test")
            assert notifier.deliver_due().failed == {"ntfy": 1}  # the receiver fails once ...
            clock.advance(seconds=2)
            assert notifier.deliver_due().delivered == {"ntfy": 3}  # ... then recovers: all three, once
            got = receiver.accepted()
            assert [r.headers["x-notification-id"] for r in got] == [str(calm.id), str(loud.id), str(long.id)]
            assert all(r.path == "/my-topic" for r in got)
            assert got[0].body.decode() == "Three new items."
            assert got[0].headers["title"] == "Morning digest"
            assert got[0].headers["priority"] == "default"
            assert got[0].headers["authorization"] == "Bearer tk_secret"
            assert got[1].headers["priority"] == "urgent"
            assert str(make_header(decode_header(got[1].headers["title"]))) == "Wetter ☂ für München"
            assert got[1].body.decode() == "Regen ab 14 Uhr"
            assert len(got[2].body) <= 4000 and got[2].body.decode().endswith("[...]")
        finally:
            notifier.close()


def test_ntfy_header_encoding_is_rfc2047() -> None:
    from assistant.notify.ntfy import header_value

    assert header_value("plain title") == "plain title"
    assert header_value("two\nlines") == "two lines"
    encoded = header_value("☃")
    assert encoded == "=?UTF-8?B?" + base64.b64encode("☃".encode()).decode() + "?="


def _fake_notify_send(bin_dir: Path, log: Path, exit_code: int = 0) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "notify-send"
    script.write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        f"sys.exit({exit_code})\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_desktop_runs_notify_send(tmp_path: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "calls.jsonl"
    _fake_notify_send(tmp_path / "bin", log)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    notifier = build_notifier(make_settings(tmp_path, desktop=True), clock)
    try:
        assert notifier.channel_names == ["desktop"]
        notifier.notify("Hello", "--not-an-option", source="test")
        notifier.notify("Alarm", "now", source="test", urgent=True)
        assert notifier.deliver_due().delivered == {"desktop": 2}
        calls = [json.loads(line) for line in log.read_text().splitlines()]
        assert calls == [
            ["--app-name=assistant", "--urgency=normal", "--", "Hello", "--not-an-option"],
            ["--app-name=assistant", "--urgency=critical", "--", "Alarm", "now"],
        ]
    finally:
        notifier.close()


def test_desktop_failures_give_up_after_three(
    tmp_path: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_notify_send(tmp_path / "bin", tmp_path / "calls.jsonl", exit_code=1)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    notifier = build_notifier(make_settings(tmp_path, desktop=True), clock)
    try:
        n = notifier.notify("Hello", "x", source="test")
        for _ in range(3):
            notifier.deliver_due()
            clock.advance(hours=1)
        status = notifier.get(n.id)
        assert status is not None
        assert status.channels[0].status == "failed" and status.channels[0].attempts == 3
    finally:
        notifier.close()


def test_desktop_is_off_without_notify_send(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with caplog.at_level(logging.INFO, logger="assistant.notify.desktop"):
        assert DesktopChannel.find() is None
    assert "notify-send is not on PATH" in caplog.text


class _BrokenChannel:
    name = "broken"
    max_attempts = 0

    def send(self, notification: Notification) -> None:
        raise RuntimeError("bug in a channel")

    def close(self) -> None:
        pass


def test_a_broken_channel_does_not_stop_the_others(
    tmp_path: Path, clock: FixedClock, receiver: Receiver
) -> None:
    from assistant.notify.webhook import WebhookChannel

    settings = make_settings(tmp_path)
    notifier = build_notifier(
        settings, clock, channels=[_BrokenChannel(), WebhookChannel(receiver.url, timeout=5)]
    )
    try:
        notifier.notify("t", "b", source="test")
        report = notifier.deliver_due()
        assert report.failed == {"broken": 1} and report.delivered == {"webhook": 1}
    finally:
        notifier.close()


def test_background_thread_delivers_without_being_called(tmp_path: Path, receiver: Receiver) -> None:
    """The real thread with the system clock: notify() wakes it; we wait for the receiver, not for time."""
    from assistant.core.clock import SystemClock

    notifier: Notifier = build_notifier(make_settings(tmp_path, webhook_url=receiver.url), SystemClock())
    notifier.start()
    try:
        n = notifier.notify("t", "b", source="test")
        deadline = time.monotonic() + 20
        while not receiver.accepted() and time.monotonic() < deadline:
            time.sleep(0.02)  # polling another thread's progress
        assert [r.json()["id"] for r in receiver.accepted()] == [n.id]
    finally:
        notifier.close()


def test_secret_urls_never_appear_in_errors(tmp_path: Path, clock: FixedClock) -> None:
    """Webhook and ntfy URLs are often the secret itself; failures are stored and served by the API."""
    from assistant.notify.channel import redact_url

    assert redact_url("https://ntfy.sh/my-secret-topic") == "https://ntfy.sh/…"
    assert redact_url("https://user:pw@hooks.example:8443/t/abc?key=s3cret") == "https://hooks.example:8443/…"
    assert redact_url("http://127.0.0.1:9000") == "http://127.0.0.1:9000"
    with Receiver(fail_first=1, fail_status=400) as receiver:
        secret_url = receiver.url + "/hook/s3cret-path-token?key=s3cret-query"
        notifier = build_notifier(make_settings(tmp_path, webhook_url=secret_url), clock)
        try:
            bad = notifier.notify("refused", "x", source="test")
            notifier.deliver_due()
            status = notifier.get(bad.id)
            assert status is not None
            error = status.channels[0].last_error or ""
            assert "HTTP 400" in error and "s3cret" not in error
            assert "s3cret" not in str(status.to_json())
        finally:
            notifier.close()
    with socket.socket() as s:  # a port nobody listens on: the connection error must not name the path
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    notifier = build_notifier(
        make_settings(tmp_path / "b", webhook_url=f"http://127.0.0.1:{port}/hook/s3cret-token"), clock
    )
    try:
        n = notifier.notify("unreachable", "x", source="test")
        notifier.deliver_due()
        status = notifier.get(n.id)
        assert status is not None
        error = status.channels[0].last_error or ""
        assert error and "s3cret" not in error
    finally:
        notifier.close()
