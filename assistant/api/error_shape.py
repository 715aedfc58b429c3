"""The OpenAI error shape ``{"error": {"message", "type", "code"}}``, and an AssistantError as a response in it.

The bottom of the API's error handling: the exception handlers (``assistant.api.errors``), the disk-error
middleware, the request guard and the chat stream all answer through these two, and this module imports
none of them.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse

from assistant.core.errors import AssistantError, QueueFull


def error_body(message: str, type_: str, code: str | None) -> dict[str, object]:
    return {"error": {"message": message, "type": type_, "code": code}}


def error_response(exc: AssistantError) -> JSONResponse:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, QueueFull) else None
    return JSONResponse(error_body(exc.message, exc.type, exc.code), status_code=exc.status, headers=headers)
