"""create_app(services) -> FastAPI. Routes only translate HTTP <-> calls on services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from assistant.api import (
    chat,
    conversations,
    embeddings,
    feedback,
    feeds,
    health,
    memories,
    metrics,
    models,
    notifications,
    reminders,
    schedules,
    skills,
    web,
)
from assistant.api.errors import install_error_handlers
from assistant.api.guard import RequestGuard
from assistant.api.metrics import RequestMetrics
from assistant.services import Services

# Every router, mounted whether its part is on or not: a part turned off answers 503 saying so.
ROUTERS = (
    health.router, models.router, chat.router, conversations.router,  # the core
    memories.router, feedback.router, notifications.router, feeds.router, skills.router, schedules.router,
    reminders.router,
    metrics.router, web.router,  # the page and its static files
    embeddings.router,
)  # fmt: skip


def create_app(services: Services) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        services.start()
        try:
            yield
        finally:
            services.close()

    # No Swagger page: it loads its script from a CDN into this origin. The schema is behind the token.
    app = FastAPI(title="assistant", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.services = services
    install_error_handlers(app)
    # Host, token, origin, content type and body size are checked before any route or parser runs.
    app.add_middleware(RequestGuard, server=services.settings.server)
    # Outermost (added last): counts every request, those the guard refuses too.
    app.add_middleware(RequestMetrics, recorder=services.recorder)

    for router in ROUTERS:
        app.include_router(router)
    return app
