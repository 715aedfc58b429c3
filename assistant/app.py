"""create_app(services) -> FastAPI. Routes only translate HTTP <-> calls on services."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from assistant.api.errors import install_error_handlers
from assistant.api.guard import RequestGuard
from assistant.api.metrics import RequestMetrics
from assistant.services import CORE_ROUTERS, PARTS, Services


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

    # Every part's routers are mounted, present or not: a part turned off answers 503 saying so.
    modules = [*CORE_ROUTERS, *(m for spec in PARTS for m in spec.routers), "metrics", "web"]
    for module in modules:
        app.include_router(importlib.import_module(f"assistant.api.{module}").router)
    return app
