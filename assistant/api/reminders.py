"""/api/reminders: reminders, timers and alarms (create from words or from fields, list, get, change, cancel,
delete, snooze). 503 naming the setting when the part is off (reminders.enabled, which needs notify)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from assistant.api.deps import ServicesDep
from assistant.api.limits import CheckedJSONRoute
from assistant.core.errors import BadRequest
from assistant.reminders.parse import Clarify, Parsed
from assistant.reminders.service import ReminderService
from assistant.reminders.store import Reminder

router = APIRouter(prefix="/api/reminders", route_class=CheckedJSONRoute)
ReminderId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]


def get_reminders(services: ServicesDep) -> ReminderService:
    return services.require("reminders", services.reminders)


RemindersDep = Annotated[ReminderService, Depends(get_reminders)]


class AmbiguousTime(BadRequest):
    """The words need an answer first ("9 in the morning or in the evening?"): ask again with it."""

    code = "ambiguous_time"


class NewReminder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(
        None, min_length=1, max_length=500, examples=["remind me in 20 minutes to take the pasta out"],
        description="the request in words; or give kind, what and one of due_at, in_seconds, schedule",
    )  # fmt: skip
    kind: Literal["reminder", "timer", "alarm"] = "reminder"
    what: str = Field("", max_length=300)
    due_at: datetime | None = Field(None, description="ISO 8601; without a zone it is the user's local time")
    in_seconds: float | None = Field(None, gt=0, le=10 * 366 * 86400)
    schedule: str | None = Field(None, max_length=200, examples=["every monday at 07:00"])


class ReminderChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    what: str | None = Field(None, min_length=1, max_length=300)
    due_at: datetime | None = None
    when: str | None = Field(None, min_length=1, max_length=200, examples=["tomorrow at 10"])


class Snooze(BaseModel):
    model_config = ConfigDict(extra="forbid")

    minutes: float = Field(10, gt=0, le=24 * 60)


def _json(service: ReminderService, reminder: Reminder, **extra: Any) -> dict[str, Any]:
    return {**reminder.to_json(), "description": service.describe(reminder), **extra}


@router.get("")
def list_reminders(
    reminders: RemindersDep, all: Annotated[bool, Query(description="also fired and cancelled ones")] = False
) -> dict[str, Any]:
    return {"data": [_json(reminders, r) for r in reminders.reminders(include_done=all)]}


@router.post("", status_code=201)
def create_reminder(req: NewReminder, reminders: RemindersDep) -> dict[str, Any]:
    if req.text is not None:
        made = reminders.create_text(req.text, source="api")
        if isinstance(made, Clarify):
            raise AmbiguousTime(made.question)
    else:
        made = reminders.create(kind=req.kind, what=req.what, due_at=req.due_at, in_seconds=req.in_seconds,
                                schedule=req.schedule, source="api")  # fmt: skip
    return _json(reminders, made.reminder, confirmation=made.text)


@router.get("/{reminder_id}")
def get_reminder(reminder_id: ReminderId, reminders: RemindersDep) -> dict[str, Any]:
    return _json(reminders, reminders.get(reminder_id))


@router.patch("/{reminder_id}")
def change_reminder(reminder_id: ReminderId, req: ReminderChange, reminders: RemindersDep) -> dict[str, Any]:
    reminder = reminders.get(reminder_id)
    due = req.due_at
    if req.when is not None:
        parsed = reminders.parse(f"remind me {req.when} to x")
        if isinstance(parsed, Clarify):
            raise AmbiguousTime(parsed.question)
        if not isinstance(parsed, Parsed):
            raise BadRequest(f"cannot tell when {req.when!r} is", code="bad_reminder")
        due = parsed.due
    if due is not None:
        reminder = reminders.move(reminder_id, due if due.tzinfo else due.replace(tzinfo=reminders.zone))
    if req.what is not None:
        reminder = reminders.rename(reminder_id, req.what)
    return _json(reminders, reminder)


@router.post("/{reminder_id}/snooze")
def snooze_reminder(reminder_id: ReminderId, req: Snooze, reminders: RemindersDep) -> dict[str, Any]:
    return _json(reminders, reminders.snooze(reminder_id, req.minutes))


@router.post("/{reminder_id}/cancel")
def cancel_reminder(reminder_id: ReminderId, reminders: RemindersDep) -> dict[str, Any]:
    """Cancel a pending one (kept, state cancelled); 400 already_fired when it went off first."""
    return _json(reminders, reminders.cancel(reminder_id))


@router.delete("/{reminder_id}")
def delete_reminder(reminder_id: ReminderId, reminders: RemindersDep) -> dict[str, Any]:
    reminders.get(reminder_id)
    if not reminders.delete(reminder_id):
        raise BadRequest(f"reminder {reminder_id} is going off right now; try again", code="busy")
    return {"id": reminder_id, "deleted": True}
