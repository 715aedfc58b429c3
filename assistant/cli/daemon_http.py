"""How CLI commands reach the running daemon: its URL and token from the settings, one request helper."""

from __future__ import annotations

from typing import Any

import httpx

from assistant.config import Settings
from assistant.core.errors import AssistantError

_WILDCARDS = ("", "0.0.0.0", "::", "[::]")


def daemon_base_url(settings: Settings) -> str:
    """``http://host:port`` of the daemon; a wildcard listen address is reached on loopback."""
    host = settings.server.host
    if host in _WILDCARDS:
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{settings.server.port}"


def auth_headers(settings: Settings, token: str | None = None) -> dict[str, str]:
    token = token or settings.server.api_token
    return {"Authorization": f"Bearer {token}"} if token else {}


def error_message(resp: httpx.Response) -> str:
    """The message of an OpenAI-shaped error body, or the status and text."""
    try:
        return str(resp.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {resp.status_code} from the daemon: {resp.text[:200]}"


def daemon_call(settings: Settings, method: str, path: str, *, timeout: float = 600.0, **kwargs: Any) -> Any:
    """One request to the daemon; its JSON answer, or AssistantError with the daemon's message."""
    base = daemon_base_url(settings)
    try:
        resp = httpx.request(method, base + path, headers=auth_headers(settings), timeout=timeout, **kwargs)
    except httpx.ConnectError:
        raise AssistantError(
            f"the daemon is not running at {base} (start it with `assistant serve`)"
        ) from None
    except httpx.HTTPError as exc:
        raise AssistantError(f"talking to the daemon at {base} failed: {exc}") from None
    if resp.status_code >= 400:
        raise AssistantError(error_message(resp))
    try:
        return resp.json()
    except ValueError:
        return None
