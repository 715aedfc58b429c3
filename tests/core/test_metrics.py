"""GET /metrics: Prometheus text from each app's own registry; what the worker, memory search, scheduled runs
and notification channels record through the Recorder; route templates as labels; behind the token."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from assistant.app import create_app
from assistant.config import Settings, load_settings
from assistant.core.errors import NotFound
from assistant.core.metrics import NULL_RECORDER, PrometheusRecorder
from assistant.notify import build_notifier
from assistant.services import Services, build_services
from tests.fakes import FakeLLM, FixedClock
from tests.memory_fakes import fake_memory
from tests.notify_receiver import Receiver

MSG = {"messages": [{"role": "user", "content": "hi"}]}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a /metrics answer, by (name, labels); parsing it also checks the format."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


def deadline(seconds: float) -> float:
    return time.monotonic() + seconds


def make_settings(tmp_path: Path, **server: object) -> Settings:
    return load_settings(
        None,
        data_dir=tmp_path / "data",
        server=server,
        memory={"enabled": False},
        scheduler={"enabled": False},
    )


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    services = build_services(make_settings(tmp_path), clock=FixedClock(), llm=FakeLLM("one two three four"))
    with TestClient(create_app(services)) as client:
        yield client


def test_requests_are_counted_by_route_template_and_status(api: TestClient) -> None:
    assert api.post("/v1/chat/completions", json=MSG).status_code == 200
    assert api.get("/api/conversations/c-secret-42").status_code == 404
    assert api.get("/no/such/path/x-secret-7").status_code == 404
    r = api.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    req = "assistant_http_requests_total"
    assert value(text, req, method="POST", route="/v1/chat/completions", status="200") == 1
    assert value(text, req, method="GET", route="/api/conversations/{conversation_id}", status="404") == 1
    assert value(text, req, method="GET", route="(unmatched)", status="404") == 1
    assert "secret" not in text  # never the raw path: its cardinality has no bound
    assert value(text, "assistant_http_request_duration_seconds_count", route="/v1/chat/completions") == 1


def test_generation_tokens_time_to_first_token_and_gauges(api: TestClient) -> None:
    for _ in range(2):
        assert api.post("/v1/chat/completions", json=MSG).status_code == 200
    text = api.get("/metrics").text
    assert value(text, "assistant_generations_total", outcome="stop") == 2
    assert value(text, "assistant_tokens_generated_total") == 8  # "one two three four", twice
    assert value(text, "assistant_generation_seconds_total") > 0
    assert value(text, "assistant_generation_tokens_per_second_count") == 2
    assert value(text, "assistant_time_to_first_token_seconds_count") == 2
    assert value(text, "assistant_queue_waiting") == 0
    assert value(text, "assistant_generation_busy") == 0
    assert value(text, "assistant_process_pss_bytes") > 1_000_000  # this process, read from smaps_rollup


def test_time_to_first_token_is_recorded_when_the_token_comes_not_at_the_end(tmp_path: Path) -> None:
    gate = threading.Semaphore(0)
    llm = FakeLLM("a b c", gate=gate)
    services = build_services(make_settings(tmp_path), clock=FixedClock(), llm=llm)
    with TestClient(create_app(services)) as api:
        done: list[int] = []
        chat = threading.Thread(
            target=lambda: done.append(api.post("/v1/chat/completions", json=MSG).status_code)
        )
        chat.start()
        gate.release()  # the first token only
        text, end = "", deadline(30)
        while value(text, "assistant_time_to_first_token_seconds_count") < 1 and time.monotonic() < end:
            text = api.get("/metrics").text  # polling the worker thread's progress
        assert value(text, "assistant_generations_total", outcome="stop") == 0  # still generating
        gate.release(10)
        chat.join(10)
        assert done == [200]
        text = api.get("/metrics").text
        assert value(text, "assistant_time_to_first_token_seconds_count") == 1
        assert value(text, "assistant_generations_total", outcome="stop") == 1


def test_full_queue_is_counted(tmp_path: Path) -> None:
    gate = threading.Event()
    llm = FakeLLM("a b c", gate=gate)
    services = build_services(make_settings(tmp_path, queue_size=1), clock=FixedClock(), llm=llm)
    with TestClient(create_app(services)) as api:
        results: list[int] = []
        first = threading.Thread(
            target=lambda: results.append(api.post("/v1/chat/completions", json=MSG).status_code)
        )
        first.start()
        assert llm.started.wait(10)  # the model holds the first; the next one waits in the queue
        second = threading.Thread(
            target=lambda: results.append(api.post("/v1/chat/completions", json=MSG).status_code)
        )
        second.start()
        end = deadline(30)
        while services.worker.waiting < 1 and time.monotonic() < end:
            time.sleep(0.01)  # polling another thread's progress, not waiting for time to pass
        third = api.post("/v1/chat/completions", json=MSG)
        assert third.status_code == 429
        text = api.get("/metrics").text
        assert value(text, "assistant_queue_full_total") == 1
        assert value(text, "assistant_queue_waiting") == 1 and value(text, "assistant_generation_busy") == 1
        gate.set()
        first.join(10)
        second.join(10)
        assert results == [200, 200]
        text = api.get("/metrics").text
        status = {"method": "POST", "route": "/v1/chat/completions"}
        assert value(text, "assistant_http_requests_total", **status, status="429") == 1
        assert value(text, "assistant_http_requests_total", **status, status="200") == 2


def test_two_apps_in_one_process_do_not_share_counters(tmp_path: Path) -> None:
    apps = [
        build_services(make_settings(tmp_path / name), clock=FixedClock(), llm=FakeLLM())
        for name in ("a", "b")
    ]
    with TestClient(create_app(apps[0])) as a, TestClient(create_app(apps[1])) as b:
        for _ in range(3):
            a.post("/v1/chat/completions", json=MSG)
        b.post("/v1/chat/completions", json=MSG)
        req = {"method": "POST", "route": "/v1/chat/completions", "status": "200"}
        assert value(a.get("/metrics").text, "assistant_http_requests_total", **req) == 3
        assert value(b.get("/metrics").text, "assistant_http_requests_total", **req) == 1


def test_metrics_need_the_token_when_one_is_set(tmp_path: Path) -> None:
    services = build_services(make_settings(tmp_path, api_token="tok"), clock=FixedClock(), llm=FakeLLM())
    app = create_app(services)
    assert "/metrics" in app.openapi()["paths"]  # so the auth-matrix test (tests/api/test_guard.py) checks it
    with TestClient(app) as api:
        assert api.get("/metrics").status_code == 401
        assert api.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        r = api.get("/metrics", headers={"Authorization": "Bearer tok"})
        assert r.status_code == 200
        # the refusals were counted too, before any route was matched
        assert (
            value(r.text, "assistant_http_requests_total", method="GET", route="(unmatched)", status="401")
            == 2
        )


def test_metrics_turned_off_answer_503_and_record_nothing(tmp_path: Path) -> None:
    services = build_services(make_settings(tmp_path, metrics=False), clock=FixedClock(), llm=FakeLLM())
    assert services.recorder is NULL_RECORDER and services.worker.recorder is NULL_RECORDER
    with TestClient(create_app(services)) as api:
        r = api.get("/metrics")
        assert r.status_code == 503 and "server] metrics = true" in r.json()["error"]["message"]


def test_memory_count_and_search_latency(tmp_path: Path, services: Services) -> None:
    recorder = PrometheusRecorder()
    memory = fake_memory(tmp_path / "memory", FixedClock(), recorder=recorder)
    recorder.watch("assistant_memories", "memories stored", memory.count)
    try:
        memory.add("the cat sat on the mat")
        memory.add("dogs bark at night")
        assert memory.search("cat", k=3)
        assert memory.search("   ") == []  # nothing searched: not counted
        memory.search("night", k=3, mode="keyword")
        from prometheus_client import generate_latest

        text = generate_latest(recorder.registry).decode()
        assert value(text, "assistant_memory_search_seconds_count") == 2
        assert value(text, "assistant_memories") == 2
    finally:
        memory.close()


def test_notification_deliveries_and_failures_by_channel(tmp_path: Path) -> None:
    clock = FixedClock()
    recorder = PrometheusRecorder()
    with Receiver(fail_first=1) as receiver:
        settings = load_settings(
            None, data_dir=tmp_path / "data", notify={"desktop": False, "webhook_url": receiver.url}
        )
        notifier = build_notifier(settings, clock, recorder=recorder)
        try:
            notifier.notify("Hi", "there", source="test")
            assert notifier.deliver_due().failed == {"webhook": 1}
            retry_at = notifier.retry_at("webhook")
            assert retry_at is not None
            clock.set(retry_at)
            assert notifier.deliver_due().delivered == {"webhook": 1}
        finally:
            notifier.close()
    from prometheus_client import generate_latest

    text = generate_latest(recorder.registry).decode()
    deliveries = "assistant_notification_deliveries_total"
    assert value(text, deliveries, channel="webhook", outcome="failed") == 1
    assert value(text, deliveries, channel="webhook", outcome="delivered") == 1


def test_scheduled_runs_and_failures(tmp_path: Path, settings: Settings) -> None:
    from assistant.skillkit.scheduler import SkillScheduler
    from tests.fakes import RecordingNotifier

    services = build_services(settings, clock=FixedClock(), llm=FakeLLM(), notifier=RecordingNotifier())
    assert services.skills is not None
    recorder = PrometheusRecorder()
    sched = SkillScheduler(services.skills, tmp_path / "schedules.sqlite3", recorder=recorder)
    try:
        ok = sched.add("time", "every day at 07:30")
        sched.run_now(ok.id)
        sched.run_now(ok.id)
        broken = sched.add("time", "every day at 08:00")
        services.skills.registry._specs.pop("time")  # the skill is gone when the run comes
        with pytest.raises(NotFound, match="no skill named"):
            sched.run_now(broken.id)
    finally:
        sched.shutdown()
    from prometheus_client import generate_latest

    text = generate_latest(recorder.registry).decode()
    assert value(text, "assistant_scheduled_runs_total", skill="time", status="ok") == 2
    assert value(text, "assistant_scheduled_runs_total", skill="time", status="error") == 1
    assert value(text, "assistant_scheduled_run_seconds_count", skill="time") == 3


def test_a_missed_run_is_counted(tmp_path: Path, settings: Settings) -> None:
    from zoneinfo import ZoneInfo

    from assistant.skillkit.scheduler import SkillScheduler
    from tests.fakes import RecordingNotifier

    services = build_services(settings, clock=FixedClock(), llm=FakeLLM(), notifier=RecordingNotifier())
    assert services.skills is not None
    recorder = PrometheusRecorder()
    sched = SkillScheduler(
        services.skills, tmp_path / "schedules.sqlite3", misfire_grace_seconds=3600, recorder=recorder
    )
    try:
        # the daily time was two hours ago and the machine "slept" for three: past the 1 h grace
        two_hours_ago = (datetime.now(UTC) - timedelta(hours=2)).astimezone(ZoneInfo("Europe/Berlin"))
        s = sched.add("time", f"every day at {two_hours_ago:%H:%M}", timezone="Europe/Berlin")
        sched._aps.modify_job(s.id, next_run_time=datetime.now(UTC) - timedelta(hours=3))
        sched.start()
        end = deadline(30)
        while [r.status for r in sched.runs(s.id)] != ["missed"] and time.monotonic() < end:
            time.sleep(0.01)  # polling the scheduler's thread, not waiting for time to pass
        assert sched.runs(s.id)[0].status == "missed"
    finally:
        sched.shutdown()
    assert (
        recorder.registry.get_sample_value(
            "assistant_scheduled_runs_total", {"skill": "time", "status": "missed"}
        )
        == 1
    )
    assert (
        recorder.registry.get_sample_value("assistant_scheduled_run_seconds_count", {"skill": "time"}) is None
    )
