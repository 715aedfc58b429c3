"""GET /metrics: the daemon's Prometheus metrics (text format), and the middleware counting HTTP requests.

What is measured is listed in docs/operations.md ("Metrics"). The request guard runs first, so with
``server.api_token`` set a scraper sends the token (``authorization`` in Prometheus's scrape config).
Requests are labelled with their route template (``/api/memories/{memory_id}``), never the raw path: a
path of any request refused before routing (or matching no route) counts as ``(unmatched)``.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.api.deps import ServicesDep
from assistant.core.errors import PartDisabled
from assistant.core.metrics import PrometheusRecorder, Recorder

router = APIRouter()
UNMATCHED = "(unmatched)"


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition format"}},
)
def metrics(services: ServicesDep) -> Response:
    """Counters, histograms and gauges of this daemon (server.metrics)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    recorder = services.recorder
    if not isinstance(recorder, PrometheusRecorder):
        raise PartDisabled(
            "metrics are turned off in config: set [server] metrics = true and restart the daemon"
        )
    return Response(generate_latest(recorder.registry), media_type=CONTENT_TYPE_LATEST)


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class RequestMetrics:
    """ASGI middleware: each HTTP request's method, route template, status and time to its last byte."""

    def __init__(self, app: ASGIApp, recorder: Recorder) -> None:
        self.app = app
        self.recorder = recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # when the app fails before answering, the server answers 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.recorder.request(
                scope["method"], route_template(scope), status, time.perf_counter() - started
            )
