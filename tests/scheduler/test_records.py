"""The scheduler's typed records keep the JSON shape of /api/schedules (the CLI reads it back), and the
skill author's import path shows only the author's names."""

from __future__ import annotations

import json
from typing import Any

from assistant.cli.schedule import describe, describe_run
from assistant.skillkit import api
from assistant.skillkit.schedules import RunRecord, Schedule

RUN: dict[str, Any] = {
    "id": 7, "schedule_id": "a1b2c3d4e5f6", "skill": "time", "trigger": "run-now",
    "started_at": "2026-01-15T12:00:00+00:00", "finished_at": "2026-01-15T12:00:01+00:00", "status": "ok",
    "title": "Time", "notified": 1, "error": None,
}  # fmt: skip
SCHEDULE: dict[str, Any] = {
    "id": "a1b2c3d4e5f6", "skill": "time", "args": {"phrase": False}, "schedule": "every weekday at 7:30",
    "kind": "cron", "cron": "30 7 * * 1-5", "interval_seconds": None,
    "description": "every weekday at 07:30 (cron 30 7 * * 1-5)", "timezone": "Europe/Berlin", "paused": False,
    "next_run_time": "2026-01-16T07:30:00+01:00", "last_run": RUN,
}  # fmt: skip


def test_records_round_trip_the_api_json_byte_for_byte() -> None:
    for record_type, body in ((RunRecord, RUN), (Schedule, SCHEDULE), (Schedule, {**SCHEDULE, "last_run": None})):
        record = record_type.from_json(body)
        assert json.dumps(record.to_json()) == json.dumps(body)  # same keys, order and values
    assert RunRecord.from_json(RUN).notified is True  # stored as 1; a bool in the record, 1 in the JSON


def test_the_cli_lines_come_from_the_records() -> None:
    schedule = Schedule.from_json(SCHEDULE)
    assert describe(schedule) == (
        "a1b2c3d4e5f6  time phrase=False  'every weekday at 7:30' = every weekday at 07:30 (cron 30 7 * * 1-5) "
        "(Europe/Berlin)  next 2026-01-16T07:30:00+01:00, last ok 2026-01-15T12:00:00+00:00"
    )
    failed = RunRecord.from_json({**RUN, "status": "error", "title": None, "notified": None, "error": "boom"})
    assert describe_run(failed) == "2026-01-15T12:00:00+00:00  error   run-now  boom"


def test_the_author_module_exports_the_author_names_only() -> None:
    assert sorted(api.__all__) == [
        "FeedReader", "MemoryWriter", "NotificationSink", "PageReader", "SkillContext", "SkillResult",
        "TextGenerator", "skill",
    ]  # fmt: skip
    assert all(hasattr(api, name) for name in api.__all__)
