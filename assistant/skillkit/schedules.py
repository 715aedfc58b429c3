"""The records of the scheduler: a schedule as it is shown (``Schedule``), one run of it (``RunRecord``),
and what is stored with each job (``JobKwargs``, ``StoredSchedule``).

``Schedule`` and ``RunRecord`` are what ``SkillScheduler`` answers; ``to_json()`` gives the shape of
``/api/schedules``, and ``from_json()`` reads it back (``assistant schedule`` reads the daemon's answers).
``JobKwargs`` stays a plain dict at run time: it is pickled into the job store, and stores written by
earlier versions keep loading. Nothing here imports APScheduler.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict


class StoredSchedule(TypedDict):
    """A parsed schedule as stored with its job (``ParsedSchedule.to_dict``)."""

    schedule: str  # what the user typed
    kind: str  # "cron", "interval", "monthly" or "any"
    cron: str | None
    interval_seconds: int | None
    description: str


class JobKwargs(TypedDict):
    """The keyword arguments stored with every job (the job's function is ``JOB_FUNC``)."""

    schedule_id: str
    skill: str
    args: dict[str, Any]  # the arguments as given (text or JSON); checked again at each run
    timezone: str
    schedule: StoredSchedule
    store: NotRequired[str]  # the job store's URL, in jobs saved by earlier versions; unused


@dataclass(frozen=True)
class RunRecord:
    """One run of a schedule, as the run log holds it."""

    id: int
    schedule_id: str
    skill: str
    trigger: str  # "schedule", "run-now" or "retry"
    started_at: str  # ISO 8601, UTC, seconds
    finished_at: str | None  # None while running
    status: str  # "running", "ok", "error" or "missed"
    title: str | None
    notified: bool | None  # whether the result went out as a notification (ok runs only)
    error: str | None

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "schedule_id": self.schedule_id,
            "skill": self.skill,
            "trigger": self.trigger,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "status": self.status,
            "title": self.title,
            "notified": None if self.notified is None else int(self.notified),  # as stored: 1 or 0
            "error": self.error,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RunRecord:
        notified = d.get("notified")
        return cls(
            id=d["id"],
            schedule_id=d["schedule_id"],
            skill=d["skill"],
            trigger=d["trigger"],
            started_at=d["started_at"],
            finished_at=d.get("finished_at"),
            status=d["status"],
            title=d.get("title"),
            notified=None if notified is None else bool(notified),
            error=d.get("error"),
        )


@dataclass(frozen=True)
class Schedule:
    """A skill on a schedule: what runs, when, in which zone, and its last run."""

    id: str
    skill: str
    args: dict[str, Any]
    schedule: str  # what the user typed ("every weekday at 7:30")
    kind: str  # "cron", "interval", "monthly" or "any"
    cron: str | None
    interval_seconds: int | None
    description: str  # what will run, in words
    timezone: str
    paused: bool
    next_run_time: str | None  # ISO 8601 in the schedule's zone; None when paused
    last_run: RunRecord | None

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "skill": self.skill,
            "args": self.args,
            "schedule": self.schedule,
            "kind": self.kind,
            "cron": self.cron,
            "interval_seconds": self.interval_seconds,
            "description": self.description,
            "timezone": self.timezone,
            "paused": self.paused,
            "next_run_time": self.next_run_time,
            "last_run": self.last_run.to_json() if self.last_run is not None else None,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Schedule:
        last = d.get("last_run")
        return cls(
            id=d["id"],
            skill=d["skill"],
            args=dict(d.get("args") or {}),
            schedule=d["schedule"],
            kind=d["kind"],
            cron=d.get("cron"),
            interval_seconds=d.get("interval_seconds"),
            description=d["description"],
            timezone=d["timezone"],
            paused=d["paused"],
            next_run_time=d.get("next_run_time"),
            last_run=RunRecord.from_json(last) if last else None,
        )
