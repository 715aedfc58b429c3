"""Webhook channel: POST the notification JSON to a URL. Retried with backoff by the Notifier."""

from __future__ import annotations

import httpx

from assistant.notify.channel import post_checked
from assistant.notify.models import Notification


class WebhookChannel:
    name = "webhook"

    def __init__(
        self, url: str, *, timeout: float, max_attempts: int = 0, client: httpx.Client | None = None
    ) -> None:
        self.url = url
        self.max_attempts = max_attempts
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False)

    def send(self, notification: Notification) -> None:
        # X-Notification-Id lets a receiver drop the rare duplicate (delivery is at-least-once).
        post_checked(
            self._client,
            self.url,
            json=notification.to_json(),
            headers={"X-Notification-Id": str(notification.id), "User-Agent": "assistant-notify/1"},
        )

    def close(self) -> None:
        self._client.close()
