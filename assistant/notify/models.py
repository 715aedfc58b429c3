"""The Notification record and its JSON shape (the same in the API, the SSE stream and the webhook)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TITLE_MAX = 300
BODY_MAX = 100_000
SOURCE_MAX = 64
DATA_MAX_BYTES = 64_000


@dataclass(frozen=True)
class Notification:
    id: int
    title: str
    body: str
    source: str
    urgent: bool
    data: dict[str, Any] | None
    created_at: str  # ISO 8601, UTC

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "body": self.body,
            "source": self.source,
            "urgent": self.urgent,
            "data": self.data,
            "created_at": self.created_at,
        }

    @classmethod
    def from_json(cls, payload: Mapping[str, Any], *, default_id: int = 0) -> Notification:
        """The inverse of :meth:`to_json`, lenient as a client must be: a missing or mistyped field takes an
        empty value (``default_id`` for the id, e.g. the SSE event id)."""
        raw_id, data = payload.get("id"), payload.get("data")
        return cls(
            id=int(raw_id) if isinstance(raw_id, int | str) and str(raw_id).isdigit() else default_id,
            title=str(payload.get("title") or ""),
            body=str(payload.get("body") or ""),
            source=str(payload.get("source") or ""),
            urgent=payload.get("urgent") is True,
            data=data if isinstance(data, dict) else None,
            created_at=str(payload.get("created_at") or ""),
        )


@dataclass(frozen=True)
class ChannelState:
    """Where one channel stands with one notification."""

    channel: str
    status: str  # "pending" | "delivered" | "failed"
    attempts: int
    last_error: str | None
    last_attempt_at: str | None
    delivered_at: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "last_attempt_at": self.last_attempt_at,
            "delivered_at": self.delivered_at,
        }


@dataclass(frozen=True)
class NotificationStatus:
    """A notification with its delivery state, for the history."""

    notification: Notification
    held_until: str | None  # ISO UTC while quiet hours hold it, else None
    channels: list[ChannelState] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = self.notification.to_json()
        out["delivery"] = {
            "held_until": self.held_until,
            "channels": {c.channel: c.to_json() for c in self.channels},
        }
        return out
