"""The one mapping of errors to HTTP: every error answers in the OpenAI error shape
``{"error": {"message", "type", "code"}}`` (``assistant.api.error_shape``) with the status of its
AssistantError subclass."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistant.api.disk_errors import DiskErrorMiddleware
from assistant.api.error_shape import error_body, error_response
from assistant.core.errors import AssistantError


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg')}")
    return "invalid request: " + "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    app.add_middleware(DiskErrorMiddleware)  # a full or read-only disk: 507/503 saying so, not a 500

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
