"""Skills on schedules: ``SkillScheduler``, APScheduler 3 with a persistent job store (SQLite in the data
dir). The parts: ``jobstore`` (the store and the textual job reference), ``schedules`` (the records this
class answers with), ``delivery`` (a run's notification and memory), ``runlog`` (every run, in ``runs``).

- Schedules survive restarts and ``kill -9``: each add/pause/resume/remove is committed to SQLite before
  the API answers.
- ``coalesce`` + ``misfire_grace_time``: a laptop waking from sleep runs a missed job once (when it was
  missed by less than the grace time), not once per missed run.
- Each schedule has its own time zone; cron schedules follow that zone across DST changes.
- Every stored job names the module-level ``run_scheduled_skill`` by its textual path (``JOB_FUNC``); the
  scheduler's own job store binds each job it loads or adds to its ``_run_stored_job`` instead.
- A scheduled run produces a SkillResult, delivered as a notification and, for skills that want it, a
  memory (``delivery``). Every run is recorded in ``runs``.
"""

from __future__ import annotations

import builtins
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from assistant.config import Settings
from assistant.core.errors import AssistantError, BadRequest, NotFound, QueueFull
from assistant.core.localtime import get_zone
from assistant.core.logs import run_context
from assistant.core.metrics import NULL_RECORDER, Recorder
from assistant.skillkit.context import SkillResult
from assistant.skillkit.delivery import ScheduledDelivery
from assistant.skillkit.jobstore import JOB_FUNC, open_job_store
from assistant.skillkit.registry import SkillRunner, parse_args
from assistant.skillkit.runlog import open_run_log
from assistant.skillkit.schedule_parse import parse_schedule
from assistant.skillkit.schedules import JobKwargs, RunRecord, Schedule

if TYPE_CHECKING:
    from apscheduler.events import JobExecutionEvent
    from apscheduler.job import Job

__all__ = ["DB_NAME", "JOB_FUNC", "SkillScheduler", "build_scheduler", "run_scheduled_skill"]

log = logging.getLogger(__name__)

DB_NAME = "schedules.sqlite3"
QUEUE_RETRIES = 5


def run_scheduled_skill(
    *, schedule_id: str, skill: str, args: dict[str, Any], timezone: str, **_meta: Any
) -> None:
    """The textual job reference (``JOB_FUNC``) stored with every schedule; never the function that runs.

    A ``SkillScheduler``'s job store replaces it with the scheduler's own bound method whenever it loads
    or adds a job. Anything else that loads these jobs (a plain SQLAlchemyJobStore) gets this error.
    """
    raise RuntimeError(
        f"schedule {schedule_id} ({skill}) was loaded outside a SkillScheduler; only its job store can run it"
    )


class SkillScheduler:
    def __init__(
        self,
        runner: SkillRunner,
        db_path: Path,
        *,
        timezone: str = "UTC",
        misfire_grace_seconds: int = 43200,
        max_workers: int = 2,
        coalesce: bool = True,
        recorder: Recorder = NULL_RECORDER,
        stop_timeout: float = 5.0,
    ) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        self.runner = runner
        self.db_path = Path(db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self.store_url = f"sqlite:///{self.db_path.resolve()}"
        self.default_timezone = get_zone(timezone).key
        self.recorder, self.stop_timeout = recorder, stop_timeout
        self._stopping = threading.Event()
        self._retries: list[threading.Thread] = []
        self._aps = BackgroundScheduler(
            jobstores={"default": open_job_store(self.store_url, self._run_stored_job)},
            executors={"default": ThreadPoolExecutor(max_workers)},
            job_defaults={
                "coalesce": coalesce,
                "misfire_grace_time": misfire_grace_seconds,
                "max_instances": 1,
            },
            timezone=get_zone(timezone),
        )
        self._runs = open_run_log(self.db_path, runner.services.clock)
        from apscheduler.events import EVENT_JOB_MISSED

        self._aps.add_listener(self._on_missed, EVENT_JOB_MISSED)

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        from apscheduler.schedulers.base import STATE_RUNNING

        return self._aps.state == STATE_RUNNING

    def _ensure_open(self) -> None:
        """Open the job store without running jobs (CLI tools, API calls before start())."""
        from apscheduler.schedulers.base import STATE_STOPPED

        if self._aps.state == STATE_STOPPED:
            self._aps.start(paused=True)

    def start(self) -> None:
        """Open the store and start running due jobs (missed ones once, when within the grace time)."""
        self._stopping.clear()
        self._ensure_open()
        self._aps.resume()
        log.info("scheduler running %d schedule(s) from %s", len(self._aps.get_jobs()), self.db_path)
        self._recover_runs()

    def _recover_runs(self) -> None:
        """Runs left 'running' by a daemon that died during them: each is marked failed ('interrupted');
        a scheduled run is retried once (trigger 'retry', one per schedule, in the background); a retry or
        a run-now that was interrupted is not run again, and neither is a schedule since removed."""
        retry: dict[str, JobKwargs] = {}
        for run in self._runs.interrupted():
            job = self._aps.get_job(run.schedule_id)
            if job is None:
                why = "not retried: the schedule no longer exists"
            elif run.trigger != "schedule":
                why = f"not retried: it was a {run.trigger} run"
            else:
                why = "retried once at start"
                retry.setdefault(job.id, _kwargs(job))
            self._runs.finish(
                run.id, "error", error=f"interrupted: the daemon stopped during this run; {why}"
            )
            log.warning("schedule %s (%s): a run was interrupted; %s", run.schedule_id, run.skill, why)
        for schedule_id, kw in retry.items():
            thread = threading.Thread(
                target=self._retry, args=(schedule_id, kw), name=f"schedule-retry-{schedule_id}", daemon=True
            )
            self._retries.append(thread)
            thread.start()

    def _retry(self, schedule_id: str, kw: JobKwargs) -> None:
        try:
            self.run_schedule(schedule_id, kw["skill"], kw["args"], kw["timezone"], trigger="retry")
        except Exception:  # noqa: BLE001 - recorded in runs by run_schedule
            log.debug("retry of schedule %s failed", schedule_id, exc_info=True)

    def join_retries(self, timeout: float | None = None) -> None:
        """Wait for the retries started by ``start`` (tests; shutdown does not wait for them)."""
        for thread in self._retries:
            thread.join(timeout)

    def shutdown(self) -> None:
        from apscheduler.schedulers.base import STATE_STOPPED

        self._stopping.set()
        deadline = time.monotonic() + self.stop_timeout
        if self._aps.state != STATE_STOPPED:
            # Running jobs finish (up to stop_timeout) before the notifier and memory they use are closed.
            stopper = threading.Thread(target=self._aps.shutdown, name="scheduler-stop", daemon=True)
            stopper.start()
            stopper.join(self.stop_timeout)
            if stopper.is_alive():
                log.warning(
                    "scheduled runs still running after %.1f s; stopping without them", self.stop_timeout
                )
        for thread in self._retries:  # retries of interrupted runs (``_recover_runs``) get the same time
            thread.join(max(0.0, deadline - time.monotonic()))
        self._runs.close()

    # -- schedules ---------------------------------------------------------------------------------

    def add(
        self,
        skill: str,
        schedule: str,
        *,
        args: Mapping[str, Any] | None = None,
        timezone: str | None = None,
    ) -> Schedule:
        """Add a schedule; BadRequest for an unknown skill's arguments, a bad schedule or time zone."""
        if skill not in self.runner.registry:
            known = ", ".join(self.runner.registry.names()) or "none"
            raise BadRequest(f"no skill named {skill!r} (known skills: {known})", code="unknown_skill")
        spec = self.runner.registry.get(skill)
        checked = parse_args(spec, args)  # fail now, not at 7:30 tomorrow
        stored_args = {k: v for k, v in dict(args or {}).items() if k in checked}
        parsed = parse_schedule(schedule)
        zone = get_zone(timezone or self.default_timezone)
        trigger = parsed.trigger(zone)
        self._ensure_open()
        schedule_id = uuid.uuid4().hex[:12]
        kwargs: JobKwargs = {
            "schedule_id": schedule_id,
            "skill": skill,
            "args": stored_args,
            "timezone": zone.key,
            "schedule": parsed.to_dict(),
        }
        job = self._aps.add_job(
            JOB_FUNC, trigger=trigger, id=schedule_id, name=f"{skill}: {parsed.text}", kwargs=kwargs
        )
        log.info("added schedule %s: %s %s (%s)", schedule_id, skill, parsed.describe(), zone.key)
        return self._describe(job)

    def list(self) -> list[Schedule]:
        self._ensure_open()
        jobs = self._aps.get_jobs()
        return [self._describe(j) for j in sorted(jobs, key=lambda j: (j.kwargs.get("skill", ""), j.id))]

    def get(self, schedule_id: str) -> Schedule:
        return self._describe(self._job(schedule_id))

    def pause(self, schedule_id: str) -> Schedule:
        self._job(schedule_id)
        return self._describe(self._aps.pause_job(schedule_id))

    def resume(self, schedule_id: str) -> Schedule:
        self._job(schedule_id)
        return self._describe(self._aps.resume_job(schedule_id))

    def remove(self, schedule_id: str) -> None:
        self._job(schedule_id)
        self._aps.remove_job(schedule_id)

    def run_now(self, schedule_id: str) -> SkillResult:
        """Run a schedule's skill now, delivered like a scheduled run; the schedule itself is unchanged."""
        kw = _kwargs(self._job(schedule_id))
        return self.run_schedule(schedule_id, kw["skill"], kw["args"], kw["timezone"], trigger="run-now")

    def runs(self, schedule_id: str | None = None, limit: int = 20) -> builtins.list[RunRecord]:
        return self._runs.recent(schedule_id, limit)

    # -- running -----------------------------------------------------------------------------------

    def _run_stored_job(
        self, *, schedule_id: str, skill: str, args: dict[str, Any], timezone: str, **_meta: Any
    ) -> None:
        """What APScheduler calls (in its thread pool) for each run of a stored job; ``_meta`` holds the
        rest of the stored keyword arguments (the parsed schedule; ``store`` in jobs saved before)."""
        self.run_schedule(schedule_id, skill, args, timezone)

    def run_schedule(
        self,
        schedule_id: str,
        skill: str,
        args: Mapping[str, Any],
        timezone: str,
        *,
        trigger: str = "schedule",
    ) -> SkillResult:
        """Run the skill and deliver its result: a notification (outbox) and, if wanted, a memory."""
        services = self.runner.services
        run_id = self._runs.start(schedule_id, skill, trigger)
        spec = self.runner.registry.get(skill) if skill in self.runner.registry else None
        deliver = ScheduledDelivery.of(
            spec, schedule_id, skill, notifier=services.notifier, memory=services.memory
        )
        started = time.monotonic()
        with run_context(f"run-{run_id}"):  # every log line of this run, the model's too, carries run_id
            log.info("schedule %s (%s): %s run started", schedule_id, skill, trigger)
            try:
                result = self._run_with_retries(skill, args, timezone, f"schedule:{schedule_id}", deliver)
            except Exception as exc:
                message = exc.message if isinstance(exc, AssistantError) else str(exc)
                self._runs.finish(run_id, "error", error=message)
                self.recorder.scheduled_run(skill, "error", time.monotonic() - started)
                log.error("schedule %s (%s) failed: %s", schedule_id, skill, message)
                raise
            self._runs.finish(run_id, "ok", title=result.title, notified=result.notify)
            self.recorder.scheduled_run(skill, "ok", time.monotonic() - started)
            log.info("schedule %s (%s): run finished", schedule_id, skill)
        return result

    def _run_with_retries(
        self,
        skill: str,
        args: Mapping[str, Any],
        timezone: str,
        trigger: str,
        deliver: Callable[[SkillResult], None],
    ) -> SkillResult:
        """The model may be busy with chats: wait for a slot a few times instead of failing the run."""
        attempt = 0
        while True:
            try:
                return self.runner.run(skill, args, timezone=timezone, trigger=trigger, deliver=deliver)
            except QueueFull as exc:
                attempt += 1
                if attempt > QUEUE_RETRIES or self._stopping.wait(exc.retry_after * attempt):
                    raise

    def _on_missed(self, event: JobExecutionEvent) -> None:
        job = self._aps.get_job(event.job_id)
        skill = job.kwargs.get("skill", "?") if job else "?"
        run_id = self._runs.start(event.job_id, skill, "schedule")
        self._runs.finish(
            run_id, "missed", error=f"missed its run time {event.scheduled_run_time.isoformat()}"
        )
        self.recorder.scheduled_run(skill, "missed", None)

    # -- helpers -----------------------------------------------------------------------------------

    def _job(self, schedule_id: str) -> Job:
        self._ensure_open()
        job = self._aps.get_job(schedule_id)
        if job is None:
            raise NotFound(f"no schedule {schedule_id!r}", code="unknown_schedule")
        return job

    def _describe(self, job: Job) -> Schedule:
        kw = _kwargs(job)
        sched = kw["schedule"]
        next_run = job.next_run_time
        last = self._runs.recent(job.id, 1)
        return Schedule(
            id=job.id,
            skill=kw["skill"],
            args=kw["args"],
            schedule=sched["schedule"],
            kind=sched["kind"],
            cron=sched["cron"],
            interval_seconds=sched["interval_seconds"],
            description=sched["description"],
            timezone=kw["timezone"],
            paused=next_run is None,
            next_run_time=next_run.isoformat() if next_run else None,
            last_run=last[0] if last else None,
        )


def _kwargs(job: Job) -> JobKwargs:
    """What ``add`` stored with a job (APScheduler keeps it as a plain dict)."""
    return cast(JobKwargs, job.kwargs)


def build_scheduler(
    settings: Settings, skills: SkillRunner, *, recorder: Recorder = NULL_RECORDER
) -> SkillScheduler:
    """The scheduler of a daemon; ``Services`` starts and stops it with the other parts."""
    cfg = settings.scheduler
    return SkillScheduler(
        skills,
        settings.data_dir / DB_NAME,
        timezone=cfg.timezone or settings.timezone,
        misfire_grace_seconds=cfg.misfire_grace_seconds,
        max_workers=cfg.max_workers,
        recorder=recorder,
        stop_timeout=settings.server.stop_timeout,
    )
