"""/api/schedules: skills on schedules (list, add, pause, resume, run now, remove, run history)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from assistant.api.deps import SchedulerDep
from assistant.api.limits import CheckedJSONRoute
from assistant.api.links import links_to_each, with_links
from assistant.api.skills import result_json

router = APIRouter(prefix="/api/schedules", route_class=CheckedJSONRoute)
ScheduleId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class NewSchedule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    skill: str = Field(min_length=1, max_length=64, examples=["time"])
    schedule: str = Field(
        min_length=1,
        max_length=200,
        description='"every weekday at 7:30", "every 15 minutes", "every 3 days at 8", '
        '"on the first monday of the month at 9", several joined by "and", or cron',
        examples=["every 15 minutes"],
    )
    args: dict[str, Any] = Field(default_factory=dict)
    timezone: str | None = Field(None, max_length=64, description="IANA zone; default scheduler.timezone")


@router.get("")
def list_schedules(scheduler: SchedulerDep) -> dict[str, Any]:
    return {"data": [s.to_json() for s in scheduler.list()]}


_SCHEDULE_ROUTES = [
    ("GET", "/api/schedules/{schedule_id}"),
    ("GET", "/api/schedules/{schedule_id}/runs"),
    ("POST", "/api/schedules/{schedule_id}/pause"),
    ("POST", "/api/schedules/{schedule_id}/resume"),
    ("POST", "/api/schedules/{schedule_id}/run"),
    ("DELETE", "/api/schedules/{schedule_id}"),
]


@router.post(
    "",
    status_code=201,
    responses=with_links(
        201, "The new schedule", **links_to_each(_SCHEDULE_ROUTES, "schedule_id", "$response.body#/id")
    ),
)
def add_schedule(req: NewSchedule, scheduler: SchedulerDep) -> dict[str, Any]:
    return scheduler.add(req.skill, req.schedule, args=req.args, timezone=req.timezone).to_json()


@router.get("/{schedule_id}")
def get_schedule(schedule_id: ScheduleId, scheduler: SchedulerDep) -> dict[str, Any]:
    return scheduler.get(schedule_id).to_json()


@router.get("/{schedule_id}/runs")
def schedule_runs(
    schedule_id: ScheduleId, scheduler: SchedulerDep, limit: Annotated[int, Query(ge=1, le=500)] = 20
) -> dict[str, Any]:
    scheduler.get(schedule_id)
    return {"data": [r.to_json() for r in scheduler.runs(schedule_id, limit)]}


@router.post("/{schedule_id}/pause")
def pause_schedule(schedule_id: ScheduleId, scheduler: SchedulerDep) -> dict[str, Any]:
    return scheduler.pause(schedule_id).to_json()


@router.post("/{schedule_id}/resume")
def resume_schedule(schedule_id: ScheduleId, scheduler: SchedulerDep) -> dict[str, Any]:
    return scheduler.resume(schedule_id).to_json()


@router.post("/{schedule_id}/run")
def run_schedule_now(schedule_id: ScheduleId, scheduler: SchedulerDep) -> dict[str, Any]:
    """Run now, delivered like a scheduled run (notification, memory); the schedule is unchanged."""
    info = scheduler.get(schedule_id)
    result = scheduler.run_now(schedule_id)
    return {"schedule": info.to_json(), "result": result_json(info.skill, result)}


@router.delete("/{schedule_id}")
def remove_schedule(schedule_id: ScheduleId, scheduler: SchedulerDep) -> dict[str, Any]:
    scheduler.remove(schedule_id)
    return {"id": schedule_id, "deleted": True}
