"""Skills on schedules: APScheduler 3 with a persistent SQLAlchemy job store (SQLite in the data dir).

- Schedules survive restarts and ``kill -9``: each add/pause/resume/remove is committed to SQLite before
  the API answers.
- ``coalesce`` + ``misfire_grace_time``: a laptop waking from sleep runs a missed job once (when it was
  missed by less than the grace time), not once per missed run.
- Each schedule has its own time zone; cron schedules follow that zone across DST changes.
- Every stored job names the module-level ``run_scheduled_skill`` by its textual path (so jobs pickle
  and old job stores keep loading). The scheduler's own job store (``_skill_job_store``) binds each
  job it loads or adds to its ``SkillScheduler``'s ``_run_stored_job`` instead: no global registry of
  running schedulers, and two schedulers in one process each run their own jobs.
- A scheduled run produces a SkillResult -> ``services.notifier.notify(...)`` and, for skills that
  want it, ``services.memory.add(text, source="skill:<name>", provenance=...)``: ``untrusted`` for a
  skill that declares (or defaults to) untrusted output, such as ``seuss`` and ``digest`` made of
  headlines, else ``conversation``. A text too long for one notification goes out as several ("(1/3)" in
  the title, ``part`` in the data), cut at line ends. Every run is recorded in ``runs``.
"""

from __future__ import annotations

import builtins
import functools
import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import closing
from datetime import UTC
from pathlib import Path
from typing import Any

from assistant.config import Settings
from assistant.core.clock import Clock
from assistant.core.errors import AssistantError, BadRequest, NotFound, QueueFull
from assistant.core.localtime import get_zone
from assistant.core.logs import run_context
from assistant.core.metrics import NULL_RECORDER, Recorder
from assistant.core.recall import CONVERSATION, UNTRUSTED
from assistant.core.storage_errors import StoreCorrupt, is_corruption
from assistant.notify.split import part_title, split_body
from assistant.skillkit.api import SkillResult
from assistant.skillkit.registry import SkillRunner, parse_args
from assistant.skillkit.schedule_parse import parse_schedule

log = logging.getLogger(__name__)

JOB_FUNC = "assistant.skillkit.scheduler:run_scheduled_skill"
DB_NAME = "schedules.sqlite3"
QUEUE_RETRIES = 5
NOTIFICATION_DATA_MAX = 32_000


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


@functools.cache
def _skill_job_store() -> type[Any]:
    """SQLAlchemyJobStore whose jobs named ``JOB_FUNC`` call the owning scheduler's method.

    APScheduler 3 builds every job it runs from the stored pickle in ``_reconstitute_job`` (due jobs,
    lookups, modifications), so that is where the callable is bound; ``add_job`` and ``update_job``
    bind too, for a job object used after it is stored. What is pickled stays the textual
    reference: ``Job.__getstate__`` stores ``func_ref``, and ``_bind`` sets it back to ``JOB_FUNC``
    (``Job._modify`` recomputes it from the bound method when a modification changes the arguments,
    which would otherwise store the scheduler itself). Defined on first use so that importing this
    module does not import SQLAlchemy.
    """
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    class SkillJobStore(SQLAlchemyJobStore):
        def __init__(self, url: str, run: Callable[..., None]) -> None:
            super().__init__(url=url, tablename="schedules")
            self._run = run

        def add_job(self, job: Any) -> None:
            self._bind(job)
            super().add_job(job)

        def update_job(self, job: Any) -> None:
            self._bind(job)
            super().update_job(job)

        def _reconstitute_job(self, job_state: bytes) -> Any:
            job = super()._reconstitute_job(job_state)
            self._bind(job)
            return job

        def _bind(self, job: Any) -> None:
            if job.func_ref == JOB_FUNC or job.func == self._run:
                job.func = self._run
                job.func_ref = JOB_FUNC

    return SkillJobStore


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
            jobstores={"default": _skill_job_store()(self.store_url, self._run_stored_job)},
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
        retry: dict[str, dict[str, Any]] = {}
        for run in self._runs.interrupted():
            job = self._aps.get_job(run["schedule_id"])
            if job is None:
                why = "not retried: the schedule no longer exists"
            elif run["trigger"] != "schedule":
                why = f"not retried: it was a {run['trigger']} run"
            else:
                why = "retried once at start"
                retry.setdefault(job.id, job.kwargs)
            self._runs.finish(
                run["id"], "error", error=f"interrupted: the daemon stopped during this run; {why}"
            )
            log.warning("schedule %s (%s): a run was interrupted; %s", run["schedule_id"], run["skill"], why)
        for schedule_id, kw in retry.items():
            thread = threading.Thread(
                target=self._retry, args=(schedule_id, kw), name=f"schedule-retry-{schedule_id}", daemon=True
            )
            self._retries.append(thread)
            thread.start()

    def _retry(self, schedule_id: str, kw: Mapping[str, Any]) -> None:
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
                log.warning("scheduled runs still running after %.1f s; stopping without them", self.stop_timeout)
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
    ) -> dict[str, Any]:
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
        job = self._aps.add_job(
            JOB_FUNC,
            trigger=trigger,
            id=schedule_id,
            name=f"{skill}: {parsed.text}",
            kwargs={
                "schedule_id": schedule_id,
                "skill": skill,
                "args": stored_args,
                "timezone": zone.key,
                "schedule": parsed.to_dict(),
            },
        )
        log.info("added schedule %s: %s %s (%s)", schedule_id, skill, parsed.describe(), zone.key)
        return self._describe(job)

    def list(self) -> list[dict[str, Any]]:
        self._ensure_open()
        jobs = self._aps.get_jobs()
        return [self._describe(j) for j in sorted(jobs, key=lambda j: (j.kwargs.get("skill", ""), j.id))]

    def get(self, schedule_id: str) -> dict[str, Any]:
        return self._describe(self._job(schedule_id))

    def pause(self, schedule_id: str) -> dict[str, Any]:
        self._job(schedule_id)
        return self._describe(self._aps.pause_job(schedule_id))

    def resume(self, schedule_id: str) -> dict[str, Any]:
        self._job(schedule_id)
        return self._describe(self._aps.resume_job(schedule_id))

    def remove(self, schedule_id: str) -> None:
        self._job(schedule_id)
        self._aps.remove_job(schedule_id)

    def run_now(self, schedule_id: str) -> SkillResult:
        """Run a schedule's skill now, delivered like a scheduled run; the schedule itself is unchanged."""
        kw = self._job(schedule_id).kwargs
        return self.run_schedule(schedule_id, kw["skill"], kw["args"], kw["timezone"], trigger="run-now")

    def runs(self, schedule_id: str | None = None, limit: int = 20) -> builtins.list[dict[str, Any]]:
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
        remember = spec is not None and spec.remember
        # An unknown skill never gets here (run() raises NotFound first); untrusted is the safe side anyway.
        provenance = UNTRUSTED if spec is None or spec.untrusted_output else CONVERSATION

        def deliver(result: SkillResult) -> None:
            notifier = services.notifier
            if notifier is not None and result.notify:
                bodies = split_body(result.text)  # too long for one notification: several, not a failure
                for i, body in enumerate(bodies):
                    # the result's data goes with the first part only
                    data: dict[str, Any] = _notification_data(schedule_id, skill, result) if i == 0 else {
                        "schedule_id": schedule_id, "skill": skill
                    }  # fmt: skip
                    if len(bodies) > 1:
                        data["part"] = [i + 1, len(bodies)]
                    notifier.notify(
                        part_title(result.title, i, len(bodies)),
                        body,
                        source=f"skill:{skill}",
                        urgent=result.urgent,
                        data=data,
                    )
            memory = services.memory
            if memory is not None and remember and result.notify and result.text:
                try:
                    memory.add(
                        result.text,
                        source=f"skill:{skill}",
                        metadata={"schedule_id": schedule_id, "title": result.title},
                        provenance=provenance,
                    )
                except Exception:  # noqa: BLE001 - the notification went out; memory is a bonus
                    log.exception("storing the result of schedule %s in memory failed", schedule_id)

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

    def _on_missed(self, event: Any) -> None:
        job = self._aps.get_job(event.job_id)
        skill = job.kwargs.get("skill", "?") if job else "?"
        run_id = self._runs.start(event.job_id, skill, "schedule")
        self._runs.finish(
            run_id, "missed", error=f"missed its run time {event.scheduled_run_time.isoformat()}"
        )
        self.recorder.scheduled_run(skill, "missed", None)

    # -- helpers -----------------------------------------------------------------------------------

    def _job(self, schedule_id: str) -> Any:
        self._ensure_open()
        job = self._aps.get_job(schedule_id)
        if job is None:
            raise NotFound(f"no schedule {schedule_id!r}", code="unknown_schedule")
        return job

    def _describe(self, job: Any) -> dict[str, Any]:
        kw = job.kwargs
        sched = kw.get("schedule", {})
        next_run = job.next_run_time
        last = self._runs.recent(job.id, 1)
        return {
            "id": job.id,
            "skill": kw.get("skill"),
            "args": kw.get("args", {}),
            "schedule": sched.get("schedule"),
            "kind": sched.get("kind"),
            "cron": sched.get("cron"),
            "interval_seconds": sched.get("interval_seconds"),
            "description": sched.get("description"),
            "timezone": kw.get("timezone"),
            "paused": next_run is None,
            "next_run_time": next_run.isoformat() if next_run else None,
            "last_run": last[0] if last else None,
        }


def _notification_data(schedule_id: str, skill: str, result: SkillResult) -> dict[str, Any]:
    data: dict[str, Any] = {"schedule_id": schedule_id, "skill": skill, "result": result.data}
    if len(json.dumps(data, ensure_ascii=False, default=str)) > NOTIFICATION_DATA_MAX:
        data["result"] = None  # the body has the whole text; keep the outbox row small
    return data


def open_run_log(path: Path, clock: Clock) -> _RunLog:
    """The runs table, after a check of the whole schedules database (jobs and runs: small, so the check
    is quick). Damage raises StoreCorrupt saying what to do, instead of a crash at every start."""
    try:
        if path.exists():
            with closing(sqlite3.connect(path)) as db:
                verdict = db.execute("PRAGMA quick_check").fetchone()[0]
            if verdict != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed: {verdict}")
        return _RunLog(path, clock)
    except sqlite3.DatabaseError as exc:
        if not is_corruption(exc):
            raise
        raise StoreCorrupt(
            f"the schedule store {path} is damaged ({exc}). Stop the daemon and restore it from a backup "
            f"(assistant restore FILE), or move it aside (mv {path} {path}.broken) and start again with no "
            "schedules, then add them again (assistant schedule add ...)"
        ) from exc


class _RunLog:
    """One row per run (ok / error / missed) in the schedules database, for `assistant schedule list`."""

    def __init__(self, path: Path, clock: Clock) -> None:
        self._clock = clock
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA busy_timeout = 5000")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS schedule_runs (id INTEGER PRIMARY KEY, schedule_id TEXT NOT NULL, "
            "skill TEXT NOT NULL, trigger TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT, "
            "status TEXT NOT NULL, title TEXT, notified INTEGER, error TEXT)"
        )
        self._db.execute(
            "CREATE INDEX IF NOT EXISTS schedule_runs_by_schedule ON schedule_runs (schedule_id, id)"
        )

    def start(self, schedule_id: str, skill: str, trigger: str) -> int:
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO schedule_runs (schedule_id, skill, trigger, started_at, status) "
                "VALUES (?, ?, ?, ?, 'running')",
                (schedule_id, skill, trigger, self._now()),
            )
            return int(cur.lastrowid or 0)

    def finish(
        self, run_id: int, status: str, *, title: str | None = None, notified: bool | None = None,
        error: str | None = None,
    ) -> None:  # fmt: skip
        with self._lock:
            self._db.execute(
                "UPDATE schedule_runs SET finished_at = ?, status = ?, title = ?, notified = ?, error = ? "
                "WHERE id = ?",
                (self._now(), status, title, None if notified is None else int(notified), error, run_id),
            )

    def interrupted(self) -> list[dict[str, Any]]:
        """Runs still 'running': at start, those a daemon left behind when it died during them."""
        with self._lock:
            cur = self._db.execute(
                "SELECT id, schedule_id, skill, trigger FROM schedule_runs WHERE status = 'running' ORDER BY id"
            )
            cols = [c[0] for c in cur.description]
            return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def recent(self, schedule_id: str | None, limit: int) -> list[dict[str, Any]]:
        where, params = ("WHERE schedule_id = ?", (schedule_id,)) if schedule_id else ("", ())
        with self._lock:
            cur = self._db.execute(
                "SELECT id, schedule_id, skill, trigger, started_at, finished_at, status, title, notified, error "
                f"FROM schedule_runs {where} ORDER BY id DESC LIMIT ?",
                (*params, limit),
            )
            cols = [c[0] for c in cur.description]
            return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def _now(self) -> str:
        return self._clock.now().astimezone(UTC).isoformat(timespec="seconds")

    def close(self) -> None:
        with self._lock:
            self._db.close()


def build_scheduler(settings: Settings, skills: SkillRunner, *, recorder: Recorder = NULL_RECORDER) -> SkillScheduler:
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
