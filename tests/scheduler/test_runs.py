"""The real scheduler (APScheduler 3 + SQLAlchemy job store on SQLite in tmp): schedules, delivery of
results (notification, memory), misfires after a "sleep", coalescing, and the HTTP API."""

from __future__ import annotations

import pickle
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED
from fastapi.testclient import TestClient

from assistant.app import create_app
from assistant.config import Settings
from assistant.core.errors import BadRequest, NotFound
from assistant.services import Services, build_services
from assistant.skillkit import scheduler as scheduler_module
from assistant.skillkit.registry import SkillRunner
from assistant.skillkit.scheduler import JOB_FUNC, SkillScheduler, run_scheduled_skill
from tests.fakes import FakeLLM, FixedClock, RecordingNotifier
from tests.skill_fakes import FakeFeeds, entry


class FakeMemory:
    def __init__(self) -> None:
        self.added: list[dict[str, Any]] = []

    def add(self, text: str, source: str = "note", conversation_id: str | None = None,
            metadata: dict[str, Any] | None = None, *, provenance: str | None = None) -> str:  # fmt: skip
        self.added.append({"text": text, "source": source, "metadata": metadata, "provenance": provenance})
        return str(len(self.added))

    def warm_up(self) -> None:  # started and closed with the services, like the real MemoryService
        pass

    def close(self) -> None:
        pass


class FlakyNotifier(RecordingNotifier):
    """Records notifications; refuses them while ``failing`` (the outbox on a full disk)."""

    failing = False

    def notify(self, *args: Any, **kwargs: Any) -> Any:
        if self.failing:
            raise RuntimeError("outbox disk is full")
        return super().notify(*args, **kwargs)


@pytest.fixture
def parts(settings: Settings, clock: FixedClock, fake_llm: FakeLLM) -> Services:
    """The daemon with a recording notifier and fake feeds, and a skill runner built with a fake memory too
    (build_services has no seam for memory itself: its own memory is off)."""
    services = build_services(settings, clock=clock, llm=fake_llm, notifier=FlakyNotifier(), feeds=FakeFeeds())
    assert services.skills is not None
    memory = FakeMemory()
    skills = SkillRunner(services.skills.registry, replace(services.skills.services, memory=memory))
    return replace(services, memory=memory, skills=skills)  # type: ignore[arg-type]


def make_scheduler(services: Services, tmp_path: Path, **kw: Any) -> SkillScheduler:
    return SkillScheduler(services.skills, tmp_path / "schedules.sqlite3", timezone="Europe/Berlin", **kw)


@pytest.fixture
def scheduler(parts: Services, tmp_path: Path) -> Iterator[SkillScheduler]:
    sched = make_scheduler(parts, tmp_path)
    yield sched
    sched.shutdown()


class Events:
    """Waits for APScheduler job events (an Event, not a sleep)."""

    def __init__(self, sched: SkillScheduler) -> None:
        self.seen: list[Any] = []
        self.cond = threading.Condition()
        sched._aps.add_listener(self._on, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED)

    def _on(self, event: Any) -> None:
        with self.cond:
            self.seen.append(event)
            self.cond.notify_all()

    def wait(self, n: int = 1, timeout: float = 30) -> list[Any]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.seen) >= n, timeout), f"only {len(self.seen)} events"
            return list(self.seen)


def test_add_list_pause_resume_remove(scheduler: SkillScheduler) -> None:
    s = scheduler.add("time", "every weekday at 7:30", args={"phrase": "false"})
    assert s.cron == "30 7 * * 1-5" and s.timezone == "Europe/Berlin" and not s.paused
    assert datetime.fromisoformat(s.next_run_time).strftime("%H:%M %z") in ("07:30 +0100", "07:30 +0200")
    other = scheduler.add("digest", "every 2 hours", timezone="America/New_York")
    assert other.interval_seconds == 7200 and other.timezone == "America/New_York"
    assert [x.id for x in scheduler.list()] == [other.id, s.id]  # by skill name
    paused = scheduler.pause(s.id)
    assert paused.paused and paused.next_run_time is None
    resumed = scheduler.resume(s.id)
    assert not resumed.paused and resumed.next_run_time
    scheduler.remove(s.id)
    assert [x.id for x in scheduler.list()] == [other.id]
    with pytest.raises(NotFound):
        scheduler.pause(s.id)


def test_bad_requests(scheduler: SkillScheduler) -> None:
    with pytest.raises(BadRequest, match="no skill named 'weather'"):
        scheduler.add("weather", "hourly")
    with pytest.raises(BadRequest, match="cannot understand the schedule 'whenever'"):
        scheduler.add("time", "whenever")
    with pytest.raises(BadRequest, match="unknown timezone"):
        scheduler.add("time", "hourly", timezone="Europe/Atlantis")
    with pytest.raises(BadRequest, match="no parameter 'colour'"):
        scheduler.add("time", "hourly", args={"colour": "red"})
    with pytest.raises(BadRequest, match="argument count"):
        scheduler.add("seuss", "hourly", args={"count": "lots"})
    assert scheduler.list() == []


def test_run_now_delivers_like_a_scheduled_run(scheduler: SkillScheduler, parts: Services) -> None:
    parts.feeds.add(entry(1, "Library opens for cats"), entry(2, "Rain this weekend"))
    s = scheduler.add("digest", "every day at 18:00", args={"overview": False})
    result = scheduler.run_now(s.id)
    assert "Library opens for cats" in result.text
    [note] = parts.notifier.sent
    assert note.title == result.title and note.body == result.text and note.source == "skill:digest"
    assert note.data["schedule_id"] == s.id and note.data["result"]["count"] == 2
    assert parts.memory.added == [{"text": result.text, "source": "skill:digest",  # made of headlines
                                   "metadata": {"schedule_id": s.id, "title": result.title},
                                   "provenance": "untrusted"}]  # fmt: skip
    assert parts.feeds.reported["digest"] == {"k1-1", "k1-2"}  # marked after the notification was written
    runs = scheduler.runs(s.id)
    assert [(r.status, r.trigger, r.notified) for r in runs] == [("ok", "run-now", True)]
    assert scheduler.get(s.id).last_run.status == "ok"
    # nothing new: no notification, no memory
    scheduler.run_now(s.id)
    assert len(parts.notifier.sent) == 1 and len(parts.memory.added) == 1


def test_time_results_are_not_remembered(scheduler: SkillScheduler, parts: Services) -> None:
    s = scheduler.add("time", "hourly", args={"phrase": False}, timezone="Asia/Tokyo")
    result = scheduler.run_now(s.id)
    assert "9:00 PM (21:00)" in result.text  # the schedule's zone: 12:00 UTC is 21:00 in Tokyo
    assert len(parts.notifier.sent) == 1 and parts.memory.added == []  # a stale time is no memory


def test_failed_delivery_keeps_digest_items_for_the_next_run(
    scheduler: SkillScheduler, parts: Services
) -> None:
    parts.feeds.add(entry(1, "Library opens for cats"))
    s = scheduler.add("digest", "every day at 18:00", args={"overview": False})
    parts.notifier.failing = True
    with pytest.raises(RuntimeError, match="outbox disk is full"):
        scheduler.run_now(s.id)
    assert parts.feeds.mark_calls == []
    assert scheduler.runs(s.id)[0].status == "error"
    parts.notifier.failing = False
    result = scheduler.run_now(s.id)
    assert "Library opens for cats" in result.text and len(parts.notifier.sent) == 1


def _slept_through(sched: SkillScheduler, schedule_id: str, missed_since: timedelta) -> None:
    """Pretend the machine slept: the stored next run time is ``missed_since`` in the past."""
    sched._aps.modify_job(schedule_id, next_run_time=datetime.now(UTC) - missed_since)


def test_waking_from_sleep_runs_a_missed_job_once(parts: Services, tmp_path: Path) -> None:
    """An every-15-minutes job, 10 hours asleep: 40 runs were missed; coalescing runs it once."""
    sched = make_scheduler(parts, tmp_path)
    try:
        s = sched.add("time", "every 15 minutes", args={"phrase": False})
        _slept_through(sched, s.id, timedelta(hours=10))
        events = Events(sched)
        sched.start()
        events.wait(1)
        assert [e.code for e in events.seen] == [EVENT_JOB_EXECUTED]
        assert len(parts.notifier.sent) == 1
        nxt = datetime.fromisoformat(sched.get(s.id).next_run_time)
        assert nxt > datetime.now(UTC)  # nothing else is due: the backlog is gone
    finally:
        sched.shutdown()


def test_without_coalescing_the_backlog_would_run_many_times(parts: Services, tmp_path: Path) -> None:
    """The control for the test above: the same sleep without coalesce runs every missed time."""
    sched = make_scheduler(parts, tmp_path, coalesce=False)
    try:
        s = sched.add("time", "every 15 minutes", args={"phrase": False})
        _slept_through(sched, s.id, timedelta(hours=10))
        events = Events(sched)
        sched.start()
        events.wait(1)
        assert len(parts.notifier.sent) >= 40
    finally:
        sched.shutdown()


def test_a_run_missed_by_more_than_the_grace_time_is_skipped_and_recorded(
    parts: Services, tmp_path: Path
) -> None:
    sched = make_scheduler(parts, tmp_path, misfire_grace_seconds=3600)
    try:
        # The daily time is two hours ago (Berlin), so even the latest missed run is past the 1 h grace,
        # whatever the wall clock says when the test runs.
        two_hours_ago = (datetime.now(UTC) - timedelta(hours=2)).astimezone(ZoneInfo("Europe/Berlin"))
        s = sched.add("time", f"every day at {two_hours_ago:%H:%M}", args={"phrase": False})
        _slept_through(sched, s.id, timedelta(hours=3))
        events = Events(sched)
        sched.start()
        events.wait(1)
        assert [e.code for e in events.seen] == [EVENT_JOB_MISSED]
        assert parts.notifier.sent == []
        assert sched.runs(s.id)[0].status == "missed"
        assert datetime.fromisoformat(sched.get(s.id).next_run_time) > datetime.now(UTC)
    finally:
        sched.shutdown()


def test_schedules_persist_across_a_clean_restart(parts: Services, tmp_path: Path) -> None:
    first = make_scheduler(parts, tmp_path)
    first.start()
    a = first.add("time", "every weekday at 7:30", timezone="America/New_York")
    b = first.add("digest", "every 15 minutes")
    first.pause(b.id)
    first.shutdown()
    second = make_scheduler(parts, tmp_path)
    try:
        listed = {x.id: x for x in second.list()}
        assert listed[a.id].next_run_time == a.next_run_time
        assert listed[a.id].timezone == "America/New_York" and listed[a.id].cron == "30 7 * * 1-5"
        assert listed[b.id].paused
    finally:
        second.shutdown()


@pytest.fixture
def api(parts: Services, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(replace(parts, scheduler=make_scheduler(parts, tmp_path)))) as client:
        yield client


def test_schedules_api(api: TestClient, parts: Services) -> None:
    r = api.post("/api/schedules", json={"skill": "time", "schedule": "every weekday at 7:30",
                                         "timezone": "Asia/Tokyo", "args": {"phrase": False}})  # fmt: skip
    assert r.status_code == 201, r.text
    s = r.json()
    assert s["cron"] == "30 7 * * 1-5" and s["schedule"] == "every weekday at 7:30"
    assert s["next_run_time"].endswith("+09:00")
    assert api.get("/api/schedules").json()["data"][0]["id"] == s["id"]
    assert api.get(f"/api/schedules/{s['id']}").json()["id"] == s["id"]
    assert api.post(f"/api/schedules/{s['id']}/pause").json()["paused"] is True
    assert api.post(f"/api/schedules/{s['id']}/resume").json()["paused"] is False
    ran = api.post(f"/api/schedules/{s['id']}/run").json()
    assert ran["result"]["text"].startswith("It's 9:00 PM (21:00) on Thursday, 15 January 2026")
    assert len(parts.notifier.sent) == 1
    assert api.get(f"/api/schedules/{s['id']}/runs").json()["data"][0]["status"] == "ok"
    assert api.delete(f"/api/schedules/{s['id']}").json() == {"id": s["id"], "deleted": True}
    assert api.get("/api/schedules").json()["data"] == []


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"skill": "time", "schedule": "now and then"}, 400, "cannot understand the schedule 'now and then'"),
        ({"skill": "nope", "schedule": "hourly"}, 400, "no skill named 'nope'"),
        ({"skill": "time", "schedule": "hourly", "timezone": "Nowhere/City"}, 400, "unknown timezone"),
        ({"skill": "time"}, 400, "schedule"),
        ({"skill": "time", "schedule": "hourly", "extra": 1}, 400, "extra"),
    ],
)
def test_schedules_api_errors(api: TestClient, body: dict[str, Any], status: int, message: str) -> None:
    r = api.post("/api/schedules", json=body)
    assert r.status_code == status
    assert message in r.json()["error"]["message"]


def test_unknown_schedule_is_404(api: TestClient) -> None:
    for method, path in [
        ("post", "/pause"),
        ("post", "/resume"),
        ("post", "/run"),
        ("delete", ""),
        ("get", ""),
    ]:
        r = getattr(api, method)(f"/api/schedules/0123456789ab{path}")
        assert r.status_code == 404 and "no schedule" in r.json()["error"]["message"]


def test_a_schedule_whose_skill_is_gone_records_the_error(scheduler: SkillScheduler, parts: Services) -> None:
    s = scheduler.add("time", "hourly")
    parts.skills.registry._specs.pop("time")  # e.g. the plugin that provided it was uninstalled
    with pytest.raises(NotFound, match="no skill named 'time'"):
        scheduler.run_now(s.id)
    assert scheduler.runs(s.id)[0].status == "error"
    assert parts.notifier.sent == []


def _stored_state(db: Path, schedule_id: str) -> dict[str, Any]:
    with closing(sqlite3.connect(db)) as conn:
        (blob,) = conn.execute("SELECT job_state FROM schedules WHERE id = ?", (schedule_id,)).fetchone()
    state: dict[str, Any] = pickle.loads(blob)
    return state


def test_two_schedulers_in_one_process_each_run_their_own_jobs(parts: Services, tmp_path: Path) -> None:
    """No registry of running schedulers: each job store binds its jobs to its own SkillScheduler, even a
    job saved with the old ``store`` argument naming another path (a moved data dir)."""
    first = SkillScheduler(parts.skills, tmp_path / "one" / "schedules.sqlite3", timezone="Europe/Berlin")
    second = SkillScheduler(parts.skills, tmp_path / "two" / "schedules.sqlite3", timezone="Europe/Berlin")
    try:
        a = first.add("time", "every 15 minutes", args={"phrase": False})
        b = second.add("time", "every 15 minutes", args={"phrase": False})
        old_kwargs = {**first._aps.get_job(a.id).kwargs, "store": "sqlite:////moved/away/schedules.sqlite3"}
        first._aps.modify_job(a.id, kwargs=old_kwargs)  # as jobs were stored before
        stored = _stored_state(tmp_path / "one" / "schedules.sqlite3", a.id)
        assert (stored["func"], stored["args"]) == (JOB_FUNC, ())  # new arguments: still the textual reference
        for sched, s in ((first, a), (second, b)):
            _slept_through(sched, s.id, timedelta(minutes=5))
        events = [Events(first), Events(second)]
        first.start()
        second.start()
        for e in events:
            assert [ev.code for ev in e.wait(1)] == [EVENT_JOB_EXECUTED]
        assert [(r.schedule_id, r.status) for r in first.runs()] == [(a.id, "ok")]
        assert [(r.schedule_id, r.status) for r in second.runs()] == [(b.id, "ok")]
        assert len(parts.notifier.sent) == 2
    finally:
        first.shutdown()
        second.shutdown()
    assert not hasattr(scheduler_module, "_ACTIVE")


def test_stored_jobs_keep_the_textual_function_reference(scheduler: SkillScheduler, tmp_path: Path) -> None:
    s = scheduler.add("time", "hourly", args={"phrase": False})
    scheduler.pause(s.id)  # a modification stores the job again, from a bound job
    state = _stored_state(tmp_path / "schedules.sqlite3", s.id)
    assert state["func"] == JOB_FUNC == "assistant.skillkit.scheduler:run_scheduled_skill"
    assert state["args"] == () and "store" not in state["kwargs"]
    assert state["kwargs"]["skill"] == "time" and state["kwargs"]["args"] == {"phrase": False}
    assert scheduler._aps.get_job(s.id).func == scheduler._run_stored_job  # loaded: bound to its scheduler


def test_the_stored_reference_alone_does_not_run_a_skill() -> None:
    """Loaded by anything but a SkillScheduler's store, a job fails loudly instead of guessing a scheduler."""
    with pytest.raises(RuntimeError, match="outside a SkillScheduler"):
        run_scheduled_skill(schedule_id="0123456789ab", skill="time", args={}, timezone="UTC", store="x")
