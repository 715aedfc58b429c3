"""Desktop channel: `notify-send` (libnotify) when it is on PATH; otherwise the channel is off."""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from assistant.notify.channel import DeliveryError, read_options
from assistant.notify.models import Notification

if TYPE_CHECKING:
    from assistant.config import NotifySettings

log = logging.getLogger(__name__)

BODY_MAX_CHARS = 1000


class DesktopChannel:
    name = "desktop"
    # A desktop popup hours late is useless, and a box without a display session never succeeds.
    max_attempts = 3

    def __init__(self, executable: str, *, timeout: float = 10.0) -> None:
        self.executable = executable
        self.timeout = timeout

    @classmethod
    def find(cls, *, timeout: float = 10.0) -> DesktopChannel | None:
        path = shutil.which("notify-send")
        if path is None:
            log.info("desktop notifications off: notify-send is not on PATH (install libnotify-bin)")
            return None
        return cls(path, timeout=timeout)

    def command(self, notification: Notification) -> list[str]:
        body = notification.body
        if len(body) > BODY_MAX_CHARS:
            body = body[: BODY_MAX_CHARS - 4] + " ..."
        return [
            self.executable,
            "--app-name=assistant",
            "--urgency=" + ("critical" if notification.urgent else "normal"),
            "--",
            notification.title,
            body,
        ]

    def send(self, notification: Notification) -> None:
        try:
            done = subprocess.run(
                self.command(notification), capture_output=True, timeout=self.timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DeliveryError(f"notify-send failed: {exc}") from exc
        if done.returncode != 0:
            err = done.stderr.decode("utf-8", "replace").strip()[:200]
            raise DeliveryError(f"notify-send exited with {done.returncode}: {err}")

    def close(self) -> None:
        pass


def desktop_channel(notify: NotifySettings, options: Mapping[str, Any]) -> DesktopChannel | None:
    """The ``desktop`` channel plugin: on when ``notify.desktop`` is true and notify-send is on PATH."""
    opts = read_options(options, {"timeout": (int, float)})
    if not notify.desktop:
        return None
    return DesktopChannel.find(timeout=opts.get("timeout", notify.timeout))
