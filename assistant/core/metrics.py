"""What the parts of the daemon record for ``GET /metrics``, as a Protocol they are given.

The worker, memory search, scheduled runs and notification channels call a ``Recorder``; they never import
Prometheus. The composition root (``assistant.services``) passes a ``PrometheusRecorder`` (its own
``CollectorRegistry``, so two apps in one process never share counters) or, with ``server.metrics = false``
and in unit tests, the ``NullRecorder``. ``watch`` registers a value read at scrape time (queue depth,
memory count, process PSS).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

# Generation outcomes: the backend's finish reason, or one of these.
ERROR = "error"


class Recorder(Protocol):
    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One HTTP request; ``route`` is the route template (``/api/memories/{memory_id}``), never the path."""

    def generation(self, *, tokens: int, seconds: float, outcome: str) -> None:
        """One generation ended: completion tokens, seconds from the model's start to its end, the finish
        reason ("stop", "length", "cancelled"), "stopped" (the daemon is stopping) or "error"."""

    def first_token(self, seconds: float) -> None:
        """A generation's first token came, ``seconds`` after its request was queued."""

    def queue_full(self) -> None:
        """A generation request was refused with 429 (``server.queue_size`` requests already waited)."""

    def memory_search(self, seconds: float) -> None:
        """One memory search (recall, API or eval)."""

    def scheduled_run(self, skill: str, status: str, seconds: float | None) -> None:
        """One run of a schedule: status "ok", "error", or "missed" (past the grace time; no seconds)."""

    def notification(self, channel: str, outcome: str) -> None:
        """One delivery attempt on a channel: "delivered", "failed" (will retry) or "gave_up"."""

    def watch(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        """A gauge whose value ``read()`` returns at each scrape."""


class NullRecorder:
    """Records nothing (metrics off, unit tests of a single part)."""

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        pass

    def generation(self, *, tokens: int, seconds: float, outcome: str) -> None:
        pass

    def first_token(self, seconds: float) -> None:
        pass

    def queue_full(self) -> None:
        pass

    def memory_search(self, seconds: float) -> None:
        pass

    def scheduled_run(self, skill: str, status: str, seconds: float | None) -> None:
        pass

    def notification(self, channel: str, outcome: str) -> None:
        pass

    def watch(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        pass


NULL_RECORDER: Recorder = NullRecorder()

# Seconds: from a millisecond (a keyword search) to minutes (a long answer on a Pi).
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_SPEED_BUCKETS = (1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 50.0, 75.0, 100.0, 200.0)


class PrometheusRecorder:
    """A ``Recorder`` writing to its own ``CollectorRegistry`` (``registry``, which ``/metrics`` renders)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry
        self._requests = Counter(
            "assistant_http_requests", "HTTP requests by method, route template and status",
            ["method", "route", "status"], registry=reg,
        )  # fmt: skip
        self._request_seconds = Histogram(
            "assistant_http_request_duration_seconds", "HTTP request time until the response ended",
            ["route"], buckets=_LATENCY_BUCKETS, registry=reg,
        )  # fmt: skip
        self._generations = Counter(
            "assistant_generations",
            "generations by outcome (finish reason or error)",
            ["outcome"],
            registry=reg,
        )
        self._tokens = Counter("assistant_tokens_generated", "completion tokens generated", registry=reg)
        self._generation_seconds = Counter(
            "assistant_generation_seconds", "seconds the model spent generating", registry=reg
        )
        self._speed = Histogram(
            "assistant_generation_tokens_per_second", "completion tokens per second of each generation",
            buckets=_SPEED_BUCKETS, registry=reg,
        )  # fmt: skip
        self._ttft = Histogram(
            "assistant_time_to_first_token_seconds", "seconds from a request being queued to its first token",
            buckets=_LATENCY_BUCKETS, registry=reg,
        )  # fmt: skip
        self._queue_full = Counter(
            "assistant_queue_full", "generation requests refused with 429 (queue full)", registry=reg
        )
        self._search_seconds = Histogram(
            "assistant_memory_search_seconds", "memory search latency", buckets=_LATENCY_BUCKETS, registry=reg
        )
        self._runs = Counter(
            "assistant_scheduled_runs", "scheduled skill runs by skill and status", ["skill", "status"],
            registry=reg,
        )  # fmt: skip
        self._run_seconds = Histogram(
            "assistant_scheduled_run_seconds", "scheduled run time", ["skill"], buckets=_LATENCY_BUCKETS,
            registry=reg,
        )  # fmt: skip
        self._notifications = Counter(
            "assistant_notification_deliveries", "notification delivery attempts by channel and outcome",
            ["channel", "outcome"], registry=reg,
        )  # fmt: skip

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        self._requests.labels(method, route, str(status)).inc()
        self._request_seconds.labels(route).observe(seconds)

    def generation(self, *, tokens: int, seconds: float, outcome: str) -> None:
        self._generations.labels(outcome).inc()
        self._tokens.inc(tokens)
        self._generation_seconds.inc(seconds)
        if tokens and seconds > 0:
            self._speed.observe(tokens / seconds)

    def first_token(self, seconds: float) -> None:
        self._ttft.observe(seconds)

    def queue_full(self) -> None:
        self._queue_full.inc()

    def memory_search(self, seconds: float) -> None:
        self._search_seconds.observe(seconds)

    def scheduled_run(self, skill: str, status: str, seconds: float | None) -> None:
        self._runs.labels(skill, status).inc()
        if seconds is not None:
            self._run_seconds.labels(skill).observe(seconds)

    def notification(self, channel: str, outcome: str) -> None:
        self._notifications.labels(channel, outcome).inc()

    def watch(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        from prometheus_client import Gauge

        def safe_read() -> float:
            try:
                return float(read())
            except Exception:  # noqa: BLE001 - a part being closed must not fail the whole scrape
                return float("nan")

        Gauge(name, help_text, registry=self.registry).set_function(safe_read)
