"""How a scheduled run's result is delivered: a notification (several when the text is too long for one:
"(1/3)" in the title, ``part`` in the data, cut at line ends) and, for skills that want it, a memory
(``source="skill:<name>"``). A skill that declares (or defaults to) untrusted output, such as ``seuss``
and ``digest`` made of headlines, is remembered with provenance ``untrusted``, else ``conversation``."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from assistant.core.recall import CONVERSATION, UNTRUSTED
from assistant.notify.split import part_title, split_body
from assistant.skillkit.context import MemoryWriter, NotificationSink, SkillResult
from assistant.skillkit.spec import SkillSpec

log = logging.getLogger(__name__)

NOTIFICATION_DATA_MAX = 32_000


@dataclass(frozen=True)
class ScheduledDelivery:
    """Delivers the result of one run of a schedule (the runner's ``deliver``)."""

    schedule_id: str
    skill: str
    notifier: NotificationSink | None
    memory: MemoryWriter | None
    remember: bool  # whether the result becomes a memory
    provenance: str  # of that memory

    @classmethod
    def of(
        cls,
        spec: SkillSpec | None,
        schedule_id: str,
        skill: str,
        *,
        notifier: NotificationSink | None,
        memory: MemoryWriter | None,
    ) -> ScheduledDelivery:
        """The delivery a skill asked for (``spec`` None: a skill no longer installed)."""
        # An unknown skill never runs (the runner raises NotFound first); untrusted is the safe side anyway.
        provenance = UNTRUSTED if spec is None or spec.untrusted_output else CONVERSATION
        remember = spec is not None and spec.remember
        return cls(schedule_id, skill, notifier, memory, remember, provenance)

    def __call__(self, result: SkillResult) -> None:
        schedule_id, skill = self.schedule_id, self.skill
        if self.notifier is not None and result.notify:
            bodies = split_body(result.text)  # too long for one notification: several, not a failure
            for i, body in enumerate(bodies):
                # the result's data goes with the first part only
                data: dict[str, Any] = notification_data(schedule_id, skill, result) if i == 0 else {
                    "schedule_id": schedule_id, "skill": skill
                }  # fmt: skip
                if len(bodies) > 1:
                    data["part"] = [i + 1, len(bodies)]
                self.notifier.notify(
                    part_title(result.title, i, len(bodies)),
                    body,
                    source=f"skill:{skill}",
                    urgent=result.urgent,
                    data=data,
                )
        if self.memory is not None and self.remember and result.notify and result.text:
            try:
                self.memory.add(
                    result.text,
                    source=f"skill:{skill}",
                    metadata={"schedule_id": schedule_id, "title": result.title},
                    provenance=self.provenance,
                )
            except Exception:  # noqa: BLE001 - the notification went out; memory is a bonus
                log.exception("storing the result of schedule %s in memory failed", schedule_id)


def notification_data(schedule_id: str, skill: str, result: SkillResult) -> dict[str, Any]:
    """The notification's data: which schedule, and the result's data unless it is too large."""
    data: dict[str, Any] = {"schedule_id": schedule_id, "skill": skill, "result": result.data}
    if len(json.dumps(data, ensure_ascii=False, default=str)) > NOTIFICATION_DATA_MAX:
        data["result"] = None  # the body has the whole text; keep the outbox row small
    return data
