"""A scheduled run killed part-way (its row left 'running') is retried once at the next start, or marked
failed; never left 'running'. Real scheduler and job store on SQLite in tmp; the "kill" is a run row
started and never finished, exactly what a daemon killed during a run leaves behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.services import Services, build_services
from assistant.skillkit.scheduler import SkillScheduler
from assistant.skillkit.schedules import Schedule
from tests.fakes import FakeLLM, FixedClock, RecordingNotifier


@pytest.fixture
def parts(settings: Settings, clock: FixedClock, fake_llm: FakeLLM) -> Services:
    return build_services(settings, clock=clock, llm=fake_llm, notifier=RecordingNotifier())


def _sched(services: Services, tmp_path: Path) -> SkillScheduler:
    return SkillScheduler(services.skills, tmp_path / "schedules.sqlite3", timezone="UTC")


def _killed_during_a_run(services: Services, tmp_path: Path, trigger: str = "schedule") -> Schedule:
    """Add a schedule and leave one of its runs 'running', as a kill -9 during the run would."""
    sched = _sched(services, tmp_path)
    s = sched.add("time", "every day at 07:00", args={"phrase": False})
    sched._runs.start(s.id, "time", trigger)
    assert [r.status for r in sched.runs(s.id)] == ["running"]
    sched.shutdown()
    return s


def _restart(services: Services, tmp_path: Path) -> SkillScheduler:
    sched = _sched(services, tmp_path)
    sched.start()
    sched.join_retries(timeout=60)
    return sched


def test_a_scheduled_run_killed_part_way_is_retried_once_at_start(parts: Services, tmp_path: Path) -> None:
    s = _killed_during_a_run(parts, tmp_path)
    sched = _restart(parts, tmp_path)
    try:
        runs = sched.runs(s.id)
        assert [(r.status, r.trigger) for r in runs] == [("ok", "retry"), ("error", "schedule")]
        assert "interrupted" in runs[1].error and "retried" in runs[1].error
        assert runs[1].finished_at is not None
        assert len(parts.notifier.sent) == 1  # the retry delivered
    finally:
        sched.shutdown()
    again = _restart(parts, tmp_path)  # a clean restart retries nothing more
    try:
        assert len(again.runs(s.id)) == 2 and len(parts.notifier.sent) == 1
    finally:
        again.shutdown()


def test_a_retry_killed_part_way_is_marked_failed_not_retried_again(parts: Services, tmp_path: Path) -> None:
    s = _killed_during_a_run(parts, tmp_path, trigger="retry")
    sched = _restart(parts, tmp_path)
    try:
        [run] = sched.runs(s.id)
        assert run.status == "error" and "interrupted" in run.error and "not retried" in run.error
        assert parts.notifier.sent == []
    finally:
        sched.shutdown()


def test_an_interrupted_run_now_is_marked_failed(parts: Services, tmp_path: Path) -> None:
    """Whoever asked for run-now saw it fail; running it again unasked could surprise them."""
    s = _killed_during_a_run(parts, tmp_path, trigger="run-now")
    sched = _restart(parts, tmp_path)
    try:
        assert [r.status for r in sched.runs(s.id)] == ["error"]
        assert parts.notifier.sent == []
    finally:
        sched.shutdown()


def test_an_interrupted_run_of_a_removed_schedule_is_marked_failed(parts: Services, tmp_path: Path) -> None:
    s = _killed_during_a_run(parts, tmp_path)
    sched = _sched(parts, tmp_path)
    sched.remove(s.id)
    sched.shutdown()
    sched = _restart(parts, tmp_path)
    try:
        [run] = sched.runs(s.id)
        assert run.status == "error" and "no longer exists" in run.error
        assert parts.notifier.sent == []
    finally:
        sched.shutdown()


def test_several_interrupted_runs_of_one_schedule_give_one_retry(parts: Services, tmp_path: Path) -> None:
    s = _killed_during_a_run(parts, tmp_path)
    sched = _sched(parts, tmp_path)
    sched._runs.start(s.id, "time", "schedule")
    sched.shutdown()
    sched = _restart(parts, tmp_path)
    try:
        statuses = [(r.status, r.trigger) for r in sched.runs(s.id)]
        assert statuses == [("ok", "retry"), ("error", "schedule"), ("error", "schedule")]
    finally:
        sched.shutdown()
