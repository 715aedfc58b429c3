"""What a delivery channel is, what a channel plugin provides (``ChannelFactory``), how delivery failures
are classified, and the retry schedule."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import httpx

from assistant.notify.models import Notification

if TYPE_CHECKING:
    from assistant.config import NotifySettings

# The receiver says this particular message is bad: retrying the same bytes cannot help.
PERMANENT_HTTP_STATUSES = frozenset({400, 413, 415, 422})


class DeliveryError(Exception):
    """A delivery attempt failed. ``permanent`` means retrying the same notification cannot succeed."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Channel(Protocol):
    name: str
    max_attempts: int  # 0 = keep trying

    def send(self, notification: Notification) -> None:
        """Deliver or raise DeliveryError."""
        ...

    def close(self) -> None: ...


class ChannelFactory(Protocol):
    """What an ``assistant.channels`` entry point names: called once when the notifier is built, with the
    ``[notify]`` section (its ``timeout`` and ``max_attempts`` are the defaults of every channel) and the
    channel's own ``[notify.channels.NAME]`` table (``{}`` when there is none). Returns the channel, or
    None when it is not configured (then it is off). A bad option raises ValueError naming it."""

    def __call__(self, notify: NotifySettings, options: Mapping[str, Any], /) -> Channel | None: ...


def read_options(options: Mapping[str, Any], allowed: Mapping[str, type | tuple[type, ...]]) -> dict[str, Any]:
    """A channel's table checked against ``allowed`` (key -> type); ValueError names the first bad key."""
    for key, value in options.items():
        kind = allowed.get(key)
        if kind is None:
            raise ValueError(f"unknown option {key!r} (options: {', '.join(sorted(allowed)) or 'none'})")
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            raise ValueError(f"option {key!r} must be {names} (got {value!r})")
    return dict(options)


def http_url(url: str, key: str = "url") -> str:
    """``url`` if it is an http(s) URL, else ValueError naming ``key``."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{key} must be an http:// or https:// URL")
    return url


def backoff_delay(failures: int, base: float, cap: float) -> timedelta:
    """Wait after the ``failures``-th consecutive failure: base, 2*base, 4*base, ... capped at ``cap``."""
    if failures <= 0:
        return timedelta(0)
    return timedelta(seconds=min(cap, base * 2 ** min(failures - 1, 60)))


def redact_url(url: str) -> str:
    """``https://ntfy.sh/my-secret-topic?auth=x`` -> ``https://ntfy.sh/…``: webhook and ntfy URLs often are
    the secret (a topic name, a token in the path or query), and errors are stored and shown by the API."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    rest = "/…" if (parts.path not in ("", "/") or parts.query or parts.fragment) else ""
    return f"{parts.scheme}://{host}{port}{rest}"


def post_checked(client: httpx.Client, url: str, **kwargs: object) -> None:
    """POST; every failure becomes a DeliveryError (transient unless the receiver refused the message).
    Its message names the receiver by its redacted URL only."""
    shown = redact_url(url)
    try:
        response = client.post(url, **kwargs)  # type: ignore[arg-type]
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{type(exc).__name__} posting to {shown}: {_without(str(exc), url)}") from exc
    if response.status_code >= 300:
        detail = _without(response.text[:200].strip(), url)
        raise DeliveryError(
            f"HTTP {response.status_code} from {shown}" + (f": {detail}" if detail else ""),
            permanent=response.status_code in PERMANENT_HTTP_STATUSES,
        )


def _without(text: str, url: str) -> str:
    """``text`` with the secret parts of ``url`` (path, query, user info) taken out."""
    parts = urlsplit(url)
    for secret in (url, parts.path, parts.query, parts.username or "", parts.password or ""):
        if len(secret) > 1:
            text = text.replace(secret, "…")
    return text
