"""Webhook channel: POST the notification JSON to a URL. Retried with backoff by the Notifier."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from assistant.notify.channel import http_url, post_checked, read_options
from assistant.notify.models import Notification

if TYPE_CHECKING:
    from assistant.config import NotifySettings


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


def webhook_channel(notify: NotifySettings, options: Mapping[str, Any]) -> WebhookChannel | None:
    """The ``webhook`` channel plugin: on when ``notify.webhook_url`` (or ``url`` in its table) is set."""
    opts = read_options(options, {"url": str, "timeout": (int, float), "max_attempts": int})
    url = opts.get("url", notify.webhook_url)
    if not url:
        return None
    return WebhookChannel(
        http_url(url),
        timeout=opts.get("timeout", notify.timeout),
        max_attempts=opts.get("max_attempts", notify.max_attempts),
    )
