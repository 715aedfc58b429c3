"""ntfy channel: publish to a topic URL (https://ntfy.sh/<topic> or a self-hosted server).

The body is the message; the title and priority go in headers. Non-ASCII titles are sent RFC 2047 encoded
(ntfy decodes them). ntfy keeps messages up to 4096 bytes as text, so longer bodies are cut with a marker
(the full text stays in the outbox and the history).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import httpx

from assistant.notify.channel import http_url, post_checked, read_options
from assistant.notify.models import Notification

if TYPE_CHECKING:
    from assistant.config import NotifySettings

MESSAGE_MAX_BYTES = 4000


def header_value(text: str) -> str:
    """A header-safe form of ``text``: itself when printable ASCII, else RFC 2047 base64."""
    one_line = " ".join(text.split())
    if one_line.isascii() and one_line.isprintable():
        return one_line
    return "=?UTF-8?B?" + base64.b64encode(one_line.encode("utf-8")).decode("ascii") + "?="


def clip_utf8(text: str, max_bytes: int) -> str:
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    marker = " [...]"
    return raw[: max_bytes - len(marker)].decode("utf-8", errors="ignore") + marker


class NtfyChannel:
    name = "ntfy"

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        token: str | None = None,
        max_attempts: int = 0,
        client: httpx.Client | None = None,
    ) -> None:
        self.url = url
        self.token = token
        self.max_attempts = max_attempts
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False)

    def headers(self, notification: Notification) -> dict[str, str]:
        headers = {
            "Title": header_value(notification.title),
            "Priority": "urgent" if notification.urgent else "default",
            "Tags": header_value(notification.source),
            "X-Notification-Id": str(notification.id),
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def send(self, notification: Notification) -> None:
        body = notification.body or notification.title
        post_checked(
            self._client,
            self.url,
            content=clip_utf8(body, MESSAGE_MAX_BYTES).encode("utf-8"),
            headers=self.headers(notification),
        )

    def close(self) -> None:
        self._client.close()


def ntfy_channel(notify: NotifySettings, options: Mapping[str, Any]) -> NtfyChannel | None:
    """The ``ntfy`` channel plugin: on when ``notify.ntfy_url`` (or ``url`` in its table) is set."""
    opts = read_options(options, {"url": str, "token": str, "timeout": (int, float), "max_attempts": int})
    url = opts.get("url", notify.ntfy_url)
    if not url:
        return None
    return NtfyChannel(
        http_url(url),
        timeout=opts.get("timeout", notify.timeout),
        token=opts.get("token", notify.ntfy_token),
        max_attempts=opts.get("max_attempts", notify.max_attempts),
    )
