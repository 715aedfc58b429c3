"""HTTP client for the daemon, as the voice front end uses it: chat turns, skills, the notification stream."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from assistant.voice.audio import VoiceError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notification:
    id: str
    title: str
    body: str
    source: str = ""
    urgent: bool = False
    data: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""

    @classmethod
    def from_json(cls, event_id: str, payload: dict[str, Any]) -> Notification:
        return cls(
            id=str(payload.get("id", event_id)),
            title=str(payload.get("title") or ""),
            body=str(payload.get("body") or ""),
            source=str(payload.get("source") or ""),
            urgent=bool(payload.get("urgent", False)),
            data=payload.get("data") if isinstance(payload.get("data"), dict) else {},
            created_at=str(payload.get("created_at") or ""),
        )


def _error_message(resp: httpx.Response) -> str:
    try:
        return str(resp.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return resp.text[:200] or resp.reason_phrase


class DaemonClient:
    """Talks to ``assistant serve`` over HTTP; keeps the conversation id across turns."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 180.0,
        max_tokens: int = 200,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.max_tokens = max_tokens
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=httpx.Timeout(timeout, connect=10.0), transport=transport
        )
        self.conversation_id: str | None = None

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise VoiceError(f"the daemon at {self.url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise VoiceError(f"cannot reach the daemon at {self.url}: {exc}") from None
        if resp.status_code == 401:
            raise VoiceError("the daemon refused the API token: set server.api_token or pass --token")
        if resp.status_code >= 400:
            raise VoiceError(f"the daemon answered {resp.status_code}: {_error_message(resp)}")
        return resp

    def ask(self, text: str) -> str:
        """One chat turn; the daemon keeps the history under ``conversation_id``."""
        body: dict[str, Any] = {
            "messages": [{"role": "user", "content": text}],
            "max_tokens": self.max_tokens,
        }
        if self.conversation_id:
            body["conversation_id"] = self.conversation_id
        data = self._request("POST", "/v1/chat/completions", json=body).json()
        self.conversation_id = data.get("conversation_id") or self.conversation_id
        try:
            return str(data["choices"][0]["message"]["content"] or "").strip()
        except (KeyError, IndexError, TypeError):
            raise VoiceError("the daemon sent a chat answer without choices[0].message.content") from None

    def new_conversation(self) -> None:
        self.conversation_id = None

    def skills(self) -> list[dict[str, Any]]:
        """The daemon's skills (``GET /api/skills``), or [] when it has none or no skills endpoint."""
        try:
            resp = self._http.get("/api/skills", timeout=10.0)
        except httpx.HTTPError:
            return []
        if resp.status_code != 200:
            return []
        try:
            data = resp.json()
        except ValueError:
            return []
        items = data.get("skills", data.get("data", [])) if isinstance(data, dict) else data
        return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []

    def notifications(self, stop: threading.Event, *, retry: float = 3.0) -> Iterator[Notification]:
        """Notifications from ``GET /api/notifications/stream`` (SSE) until ``stop`` is set.

        Reconnects after a dropped connection with ``Last-Event-ID`` so nothing sent meanwhile is missed.
        A read blocks until the next event or keep-alive ping; ``stop`` is checked after each.
        """
        last_id: str | None = None
        while not stop.is_set():
            headers = {"Accept": "text/event-stream"}
            if last_id:
                headers["Last-Event-ID"] = last_id
            try:
                timeout = httpx.Timeout(None, connect=10.0)
                with self._http.stream("GET", "/api/notifications/stream", headers=headers, timeout=timeout) as r:
                    if r.status_code != 200:
                        r.read()
                        log.warning("notification stream: %s %s", r.status_code, _error_message(r))
                        if r.status_code in (401, 403, 404):
                            return
                    else:
                        for event_id, event, data in parse_sse(r.iter_lines()):
                            if stop.is_set():
                                return
                            last_id = event_id or last_id
                            if event not in ("notification", "message"):
                                continue
                            try:
                                payload = json.loads(data)
                            except ValueError:
                                log.warning("notification stream: event %s is not JSON", event_id)
                                continue
                            if isinstance(payload, dict):
                                yield Notification.from_json(event_id, payload)
            except (httpx.HTTPError, httpx.StreamError, RuntimeError) as exc:
                if stop.is_set():
                    return
                log.info("notification stream dropped (%s); reconnecting", exc)
            stop.wait(retry)


def parse_sse(lines: Iterator[str]) -> Iterator[tuple[str, str, str]]:
    """Server-sent events as (id, event, data); ``data:`` lines join with newlines, ``:`` lines are comments."""
    event_id, event, data = "", "message", []
    for line in lines:
        line = line.rstrip("\r")
        if not line:
            if data:
                yield event_id, event, "\n".join(data)
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "id":
            event_id = value
        elif name == "event":
            event = value
        elif name == "data":
            data.append(value)
    if data:
        yield event_id, event, "\n".join(data)
