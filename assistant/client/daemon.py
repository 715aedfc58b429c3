"""The daemon's HTTP API as the CLI commands, `assistant chat` and the voice front end use it: JSON calls,
chat turns (streamed or whole), the skills list and the notification stream."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from assistant.core.errors import AssistantError
from assistant.core.openai_stream import delta_text, iter_chunks, parse_sse
from assistant.notify.models import Notification

if TYPE_CHECKING:
    from assistant.config import Settings

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0

Primitive = str | int | float | bool | None
Params = Mapping[str, Primitive] | list[tuple[str, Primitive]]


class DaemonError(AssistantError):
    """The daemon answered with an error (its message), or talking to it failed."""


class DaemonUnreachable(DaemonError):
    """Nothing answers at the daemon's address."""


def daemon_base_url(settings: Settings) -> str:
    """``http://host:port`` of the daemon; a wildcard listen address is reached on loopback."""
    from assistant.config import is_wildcard_host

    host = settings.server.host
    if is_wildcard_host(host):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{settings.server.port}"


def error_message(resp: httpx.Response) -> str:
    """The message of an OpenAI-shaped error body, or the status and text. The body must have been read."""
    try:
        return str(resp.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {resp.status_code} from the daemon: {resp.text[:200]}"


class DaemonClient:
    """Talks to ``assistant serve``; keeps the conversation id across chat turns. Close it when done (or use
    it in a ``with`` block). One client may be used from several threads (e.g. a turn while the
    notification stream is followed in the background)."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 600.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.conversation_id: str | None = None
        self.persona: str | None = None  # sent with each turn when set (the daemon keeps it per conversation)
        self.last_turn_id: int | None = None  # the newest answer of this conversation, for ``rate``
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT),
            transport=transport,
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, *, url: str | None = None, token: str | None = None, timeout: float = 600.0
    ) -> DaemonClient:
        """The daemon of ``settings`` (server.host/port and server.api_token) unless ``url``/``token`` say."""
        return cls(url or daemon_base_url(settings), token=token or settings.server.api_token, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DaemonClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # requests ------------------------------------------------------------------------------------------

    def _transport_error(self, exc: httpx.HTTPError) -> DaemonError:
        if isinstance(exc, httpx.ConnectError):
            return DaemonUnreachable(
                f"the daemon is not running at {self.url} (start it with `assistant serve`)"
            )
        return DaemonError(f"talking to the daemon at {self.url} failed: {exc}")

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: object = None,
        timeout: float | None = None,
    ) -> Any:  # the daemon's JSON answer: its shape depends on the endpoint
        """One request; the JSON answer (None when it has no body), or DaemonError with the daemon's message.

        ``timeout`` (seconds) replaces the client's for this request."""
        limit = httpx.USE_CLIENT_DEFAULT if timeout is None else httpx.Timeout(timeout, connect=CONNECT_TIMEOUT)
        try:
            resp = self._http.request(method, path, params=params, json=json, timeout=limit)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        if resp.status_code >= 400:
            raise DaemonError(error_message(resp))
        try:
            return resp.json()
        except ValueError:
            return None

    def healthy(self) -> bool:
        """Whether the daemon answers ``/healthz``."""
        try:
            return self._http.get("/healthz", timeout=5.0).status_code == 200
        except httpx.HTTPError:
            return False

    def skills(self) -> list[dict[str, Any]]:
        """The daemon's skills (``GET /api/skills``), or [] when it cannot tell (unreachable, skills off)."""
        try:
            data = self.call("GET", "/api/skills", timeout=10.0)
        except DaemonError:
            return []
        items = data.get("skills", data.get("data", [])) if isinstance(data, dict) else data
        return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []

    # chat ----------------------------------------------------------------------------------------------

    def new_conversation(self) -> None:
        self.conversation_id = None
        self.last_turn_id = None

    def personas(self) -> list[dict[str, Any]]:
        """The daemon's personas (``GET /api/personas``)."""
        data = self.call("GET", "/api/personas", timeout=10.0)
        return [p for p in data.get("data", []) if isinstance(p, dict)] if isinstance(data, dict) else []

    def rate(self, good: bool) -> dict[str, Any]:
        """Thumbs up or down on the newest answer of this conversation (``POST /api/feedback``): what memory
        learned from it."""
        if not self.conversation_id:
            raise DaemonError("there is no answer to rate yet")
        body: dict[str, object] = {"conversation_id": self.conversation_id, "rating": "good" if good else "bad"}
        if self.last_turn_id is not None:
            body["turn_id"] = self.last_turn_id
        data = self.call("POST", "/api/feedback", json=body)
        return data if isinstance(data, dict) else {}

    def _turn(self, text: str, max_tokens: int | None, *, stream: bool) -> dict[str, object]:
        # "memory": the user's own client: the turn goes into memory (a plain OpenAI client's does not).
        body: dict[str, object] = {
            "messages": [{"role": "user", "content": text}], "stream": stream, "memory": True
        }
        if self.conversation_id:
            body["conversation_id"] = self.conversation_id
        if self.persona:
            body["persona"] = self.persona
        if max_tokens:
            body["max_tokens"] = max_tokens
        return body

    def ask(self, text: str, *, max_tokens: int | None = None) -> str:
        """One chat turn, answered whole; the daemon keeps the history under ``conversation_id``."""
        data = self.call("POST", "/v1/chat/completions", json=self._turn(text, max_tokens, stream=False))
        if not isinstance(data, dict):
            raise DaemonError("the daemon sent a chat answer that is not a JSON object")
        self.conversation_id = data.get("conversation_id") or self.conversation_id
        self.last_turn_id = data.get("turn_id", self.last_turn_id)
        try:
            return str(data["choices"][0]["message"]["content"] or "").strip()
        except (KeyError, IndexError, TypeError):
            raise DaemonError("the daemon sent a chat answer without choices[0].message.content") from None

    def stream(self, text: str, *, max_tokens: int | None = None) -> Iterator[str]:
        """One chat turn, streamed: the answer's pieces as they come."""
        body = self._turn(text, max_tokens, stream=True)
        try:
            with self._http.stream("POST", "/v1/chat/completions", json=body) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise DaemonError(error_message(resp))
                for chunk in iter_chunks(resp.iter_lines()):
                    error = chunk.get("error")
                    if error:
                        message = error.get("message") if isinstance(error, dict) else None
                        raise DaemonError(str(message or "error"))
                    self.conversation_id = chunk.get("conversation_id", self.conversation_id)
                    self.last_turn_id = chunk.get("turn_id", self.last_turn_id)
                    piece = delta_text(chunk)
                    if piece:
                        yield piece
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        except ValueError as exc:
            raise DaemonError(f"the daemon at {self.url} sent a malformed chat stream: {exc}") from None

    # notifications -------------------------------------------------------------------------------------

    def notifications(self, stop: threading.Event, *, retry: float = 3.0) -> Iterator[Notification]:
        """Notifications from ``GET /api/notifications/stream`` as they arrive, until ``stop`` is set.

        After a dropped connection (or a daemon restart) it reconnects every ``retry`` seconds, sending
        ``Last-Event-ID`` so that nothing released meanwhile is missed. It gives up when the daemon refuses
        the stream (a 4xx, or 503: notifications are turned off). A read blocks until the next line (an
        event, or the daemon's keep-alive ping every 15 s); ``stop`` is checked after each.
        """
        path, timeout = "/api/notifications/stream", httpx.Timeout(None, connect=CONNECT_TIMEOUT)
        last_id: str | None = None
        while not stop.is_set():
            headers = {"Accept": "text/event-stream"}
            if last_id:
                headers["Last-Event-ID"] = last_id
            try:
                with self._http.stream("GET", path, headers=headers, timeout=timeout) as r:
                    if r.status_code != 200:
                        r.read()
                        log.warning("notification stream: %s %s", r.status_code, error_message(r))
                        if r.status_code < 500 or r.status_code == 503:
                            return
                    else:
                        for event in parse_sse(_until(stop, r.iter_lines())):
                            if stop.is_set():
                                return
                            last_id = event.id or last_id
                            note = _notification(event.id, event.event, event.data)
                            if note is not None:
                                yield note
            except (httpx.HTTPError, RuntimeError) as exc:  # RuntimeError: httpx.StreamError, a closed client
                if stop.is_set():
                    return
                log.info("notification stream dropped (%s); reconnecting", exc)
            stop.wait(retry)


def _until(stop: threading.Event, lines: Iterable[str]) -> Iterator[str]:
    for line in lines:
        if stop.is_set():
            return
        yield line


def _notification(event_id: str, event: str, data: str) -> Notification | None:
    if event not in ("notification", "message"):
        return None
    try:
        payload = json.loads(data)
    except ValueError:
        log.warning("notification stream: event %s is not JSON", event_id)
        return None
    if not isinstance(payload, dict):
        return None
    return Notification.from_json(payload, default_id=int(event_id) if event_id.isdigit() else 0)
