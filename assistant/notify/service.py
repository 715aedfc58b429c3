"""The Notifier: write to the outbox first, then deliver to every channel from a background thread.

Every scheduling decision (quiet hours, retry backoff) uses the injected Clock, and the work is done by
deliver_due(), which tests call directly; the background thread only calls it after a short wait or
when notify() wakes it.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from assistant.config import Settings
from assistant.core import plugins
from assistant.core.clock import Clock
from assistant.core.errors import BadRequest, ConfigError
from assistant.core.metrics import NULL_RECORDER, Recorder
from assistant.notify.channel import Channel, ChannelFactory, DeliveryError, backoff_delay
from assistant.notify.models import (
    BODY_MAX,
    DATA_MAX_BYTES,
    SOURCE_MAX,
    TITLE_MAX,
    Notification,
    NotificationStatus,
)
from assistant.notify.outbox import Outbox
from assistant.notify.quiet import QuietHours
from assistant.notify.sse import Broadcaster

log = logging.getLogger(__name__)


@dataclass
class DeliveryReport:
    """What one deliver_due() pass did."""

    released: int = 0
    delivered: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)  # failed attempts (the row may be retried)
    gave_up: dict[str, int] = field(default_factory=dict)


@dataclass
class _ChannelGate:
    failures: int = 0  # consecutive failed attempts
    retry_at: datetime | None = None


def check_notification(title: object, body: object, source: object, data: object) -> None:
    """Raise BadRequest naming the field that is wrong."""
    if not isinstance(title, str) or not title.strip():
        raise BadRequest("title must be a non-empty string", code="invalid_notification")
    if len(title) > TITLE_MAX:
        raise BadRequest(f"title is longer than {TITLE_MAX} characters", code="invalid_notification")
    if not isinstance(body, str):
        raise BadRequest("body must be a string", code="invalid_notification")
    if len(body) > BODY_MAX:
        raise BadRequest(f"body is longer than {BODY_MAX} characters", code="invalid_notification")
    if not isinstance(source, str) or not source.strip() or len(source) > SOURCE_MAX:
        raise BadRequest(
            f"source must be a non-empty string of at most {SOURCE_MAX} characters",
            code="invalid_notification",
        )
    if data is not None:
        if not isinstance(data, dict):
            raise BadRequest("data must be a JSON object or null", code="invalid_notification")
        try:
            size = len(json.dumps(data, ensure_ascii=False).encode("utf-8"))
        except (TypeError, ValueError) as exc:
            raise BadRequest(f"data is not JSON-serializable: {exc}", code="invalid_notification") from None
        if size > DATA_MAX_BYTES:
            raise BadRequest(
                f"data is larger than {DATA_MAX_BYTES} bytes as JSON", code="invalid_notification"
            )


class Notifier:
    def __init__(
        self,
        outbox: Outbox,
        clock: Clock,
        *,
        channels: list[Channel] | None = None,
        quiet: QuietHours | None = None,
        broadcaster: Broadcaster | None = None,
        retry_base_seconds: float = 2.0,
        retry_max_seconds: float = 900.0,
        poll_seconds: float = 1.0,
        retention_days: int = 0,
        recorder: Recorder = NULL_RECORDER,
    ) -> None:
        self.outbox = outbox
        self.recorder = recorder
        self.clock = clock
        self.channels = list(channels or [])
        self.quiet = quiet
        self.broadcaster = broadcaster or Broadcaster()
        self.retry_base_seconds = retry_base_seconds
        self.retry_max_seconds = retry_max_seconds
        self.poll_seconds = poll_seconds
        self.retention_days = retention_days
        self._gates = {c.name: _ChannelGate() for c in self.channels}
        self._publish_lock = threading.Lock()  # SSE subscribers see notifications in release order
        self._deliver_lock = threading.Lock()  # one deliver_due() pass at a time
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_prune: datetime | None = None
        self._closed = False

    @property
    def channel_names(self) -> list[str]:
        return [c.name for c in self.channels]

    # --- the contract ----------------------------------------------------------------------------------

    def notify(
        self, title: str, body: str, *, source: str, urgent: bool = False, data: dict[str, Any] | None = None
    ) -> Notification:
        """Store a notification (committed before this returns) and schedule its delivery."""
        check_notification(title, body, source, data)
        now = self.clock.now()
        release_at = self.quiet.release_at(now, urgent) if self.quiet else now
        with self._publish_lock:
            notification, seq = self.outbox.add(
                title=title,
                body=body,
                source=source,
                urgent=bool(urgent),
                data=data,
                created_at=now,
                release_at=release_at,
                channels=self.channel_names,
            )
            if seq is not None:
                self.broadcaster.publish(notification, seq)
        if seq is None:
            log.info("notification %d held by quiet hours until %s", notification.id, release_at.isoformat())
        self._wake.set()
        return notification

    # --- delivery ---------------------------------------------------------------------------------------

    def retry_at(self, channel: str) -> datetime | None:
        """When a channel that failed will be tried again (None when it is not backing off)."""
        gate = self._gates.get(channel)
        return gate.retry_at if gate else None

    def deliver_due(self, now: datetime | None = None) -> DeliveryReport:
        """Release what quiet hours held, then give every channel that is not backing off its due work."""
        with self._deliver_lock:
            now = now or self.clock.now()
            report = DeliveryReport()
            with self._publish_lock:
                released = self.outbox.release_due(now)
                for notification, seq in released:
                    self.broadcaster.publish(notification, seq)
            report.released = len(released)
            for channel in self.channels:
                if self._stop.is_set():
                    break
                self._deliver_channel(channel, now, report)
            self._maybe_prune(now)
            return report

    def _deliver_channel(self, channel: Channel, now: datetime, report: DeliveryReport) -> None:
        gate = self._gates[channel.name]
        if gate.retry_at is not None and gate.retry_at > now:
            return
        while not self._stop.is_set():
            batch = self.outbox.due(channel.name, now)
            if not batch:
                return
            for notification in batch:
                if self._stop.is_set():
                    return
                try:
                    channel.send(notification)
                except Exception as exc:  # noqa: BLE001 - a channel bug must not stop the others
                    err = (
                        exc
                        if isinstance(exc, DeliveryError)
                        else DeliveryError(f"{type(exc).__name__}: {exc}")
                    )
                    attempts, gave_up = self.outbox.mark_attempt_failed(
                        notification.id,
                        channel.name,
                        now,
                        str(err),
                        permanent=err.permanent,
                        max_attempts=channel.max_attempts,
                    )
                    report.failed[channel.name] = report.failed.get(channel.name, 0) + 1
                    self.recorder.notification(channel.name, "gave_up" if gave_up else "failed")
                    if gave_up:
                        report.gave_up[channel.name] = report.gave_up.get(channel.name, 0) + 1
                        log.warning(
                            "%s: gave up on notification %d after %d attempt(s): %s",
                            channel.name,
                            notification.id,
                            attempts,
                            err,
                        )
                    if err.permanent:
                        continue  # this message was refused; the channel itself works
                    gate.failures += 1
                    gate.retry_at = now + backoff_delay(
                        gate.failures, self.retry_base_seconds, self.retry_max_seconds
                    )
                    log.warning(
                        "%s: delivery of notification %d failed (%s); retrying at %s",
                        channel.name,
                        notification.id,
                        err,
                        gate.retry_at.isoformat(),
                    )
                    return
                self.outbox.mark_delivered(notification.id, channel.name, now)
                report.delivered[channel.name] = report.delivered.get(channel.name, 0) + 1
                self.recorder.notification(channel.name, "delivered")
                if gate.failures:
                    log.info("%s: delivering again after %d failed attempt(s)", channel.name, gate.failures)
                gate.failures, gate.retry_at = 0, None

    def _maybe_prune(self, now: datetime) -> None:
        if self.retention_days <= 0:
            return
        if self._last_prune is not None and now - self._last_prune < timedelta(hours=1):
            return
        self._last_prune = now
        removed = self.outbox.prune(now - timedelta(days=self.retention_days))
        if removed:
            log.info("pruned %d notification(s) older than %d days", removed, self.retention_days)

    # --- reading ----------------------------------------------------------------------------------------

    def history(self, limit: int = 50, offset: int = 0) -> list[NotificationStatus]:
        return self.outbox.history(limit, offset)

    def get(self, notification_id: int) -> NotificationStatus | None:
        return self.outbox.get(notification_id)

    # --- background thread ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliver_due()
            except Exception:  # noqa: BLE001 - keep delivering; the next pass retries
                log.exception("notification delivery pass failed")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.stop()
        self.broadcaster.close()
        for channel in self.channels:
            channel.close()
        self.outbox.close()


def build_channels(settings: Settings) -> list[Channel]:
    """Every installed ``assistant.channels`` plugin that is configured (built-ins first, see
    assistant.core.plugins), each given the ``[notify]`` section and its ``[notify.channels.NAME]`` table.
    ``enabled = false`` in a channel's table turns it off. A channel named in config that cannot be loaded
    or refuses its options is a ConfigError; an unconfigured plugin that fails to load is only logged."""
    ns = settings.notify
    found = plugins.find(plugins.CHANNELS)
    for err in found.errors:
        log.warning("%s", err)
    channels: list[Channel] = []
    for plugin in found.plugins:
        options = dict(ns.channels.get(plugin.name, {}))
        if options.pop("enabled", True) is False:
            continue
        setting = f"notify.channels.{plugin.name}"
        try:
            factory = cast(ChannelFactory, plugin.factory(setting))
        except plugins.PluginError as exc:
            if plugin.name in ns.channels:
                raise
            log.warning("notification channel plugin left out: %s", exc.message)
            continue
        try:
            channel = factory(ns, options)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{setting}: {exc}") from None
        if channel is not None:
            channels.append(channel)
    return channels


def build_notifier(
    settings: Settings, clock: Clock, *, channels: list[Channel] | None = None, recorder: Recorder = NULL_RECORDER
) -> Notifier:
    """The real notifier: outbox under the data dir, channels from settings.notify (or ``channels``)."""
    ns = settings.notify
    quiet = None
    if ns.quiet_hours:
        try:
            quiet = QuietHours.parse(ns.quiet_hours, settings.timezone)
        except ValueError as exc:
            raise ConfigError(f"notify.quiet_hours / timezone: {exc}") from None
    outbox = Outbox(settings.data_dir / "notifications.sqlite3")
    chosen = build_channels(settings) if channels is None else channels
    log.info(
        "notifications: channels %s%s",
        [c.name for c in chosen] or "none (SSE only)",
        f", quiet hours {ns.quiet_hours} {settings.timezone}" if quiet else "",
    )
    return Notifier(
        outbox,
        clock,
        channels=chosen,
        quiet=quiet,
        retry_base_seconds=ns.retry_base_seconds,
        retry_max_seconds=ns.retry_max_seconds,
        poll_seconds=ns.poll_seconds,
        retention_days=ns.retention_days,
        recorder=recorder,
    )
