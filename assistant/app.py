"""create_app(services) -> FastAPI. Routes only translate HTTP <-> calls on services."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from assistant.api.auth import require_token
from assistant.api.errors import install_error_handlers
from assistant.services import CORE_ROUTERS, PARTS, Services


def create_app(services: Services) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        services.start()
        try:
            yield
        finally:
            services.close()

    app = FastAPI(title="assistant", version="0.1.0", lifespan=lifespan)
    app.state.services = services
    install_error_handlers(app)

    protected = [Depends(require_token)]
    app.include_router(importlib.import_module("assistant.api.health").router)
    # Every part's routers are mounted, present or not: a part turned off answers 503 saying so.
    modules = [m for m in CORE_ROUTERS if m != "health"] + [m for spec in PARTS for m in spec.routers]
    for module in modules:
        app.include_router(importlib.import_module(f"assistant.api.{module}").router, dependencies=protected)
    # The page needs no token; the API calls it makes do.
    app.include_router(importlib.import_module("assistant.api.web").router)
    return app
