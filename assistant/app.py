"""create_app(services) -> FastAPI. Routes only translate HTTP <-> calls on services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistant.auth import require_token
from assistant.errors import AssistantError, QueueFull
from assistant.services import Services


def error_body(message: str, type_: str, code: str | None) -> dict[str, object]:
    return {"error": {"message": message, "type": type_, "code": code}}


def error_response(exc: AssistantError) -> JSONResponse:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, QueueFull) else None
    return JSONResponse(error_body(exc.message, exc.type, exc.code), status_code=exc.status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg')}")
    return "invalid request: " + "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AssistantError)
    async def _assistant_error(_: Request, exc: AssistantError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            error_body(_validation_message(exc), "invalid_request_error", "invalid_request"), status_code=400
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return JSONResponse(
            error_body(str(exc.detail), type_, None), status_code=exc.status_code, headers=exc.headers
        )


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

    from assistant.routes import chat, conversations, health, models

    protected = [Depends(require_token)]
    app.include_router(health.router)
    app.include_router(models.router, dependencies=protected)
    app.include_router(chat.router, dependencies=protected)
    app.include_router(conversations.router, dependencies=protected)
    # Optional parts add their routers below, each line owned by its part.
    # [memory routes]
    if services.memory is not None:
        from assistant.routes import memories

        app.include_router(memories.router, dependencies=protected)
    if services.feeds is not None:  # [feeds routes]
        from assistant.routes import feeds

        app.include_router(feeds.router, dependencies=protected)
    if services.notifier is not None:  # [notifications routes]
        from assistant.routes import notifications

        app.include_router(notifications.router, dependencies=protected)
    if services.skills is not None:  # [skills+schedules routes]
        from assistant.routes import schedules, skills

        app.include_router(skills.router, dependencies=protected)
        if services.scheduler is not None:
            app.include_router(schedules.router, dependencies=protected)
    from assistant.routes import web

    app.include_router(web.router)  # the page needs no token; the API calls it makes do
    return app
