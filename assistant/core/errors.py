"""One error type per failure a user can act on; the HTTP mapping lives in assistant.api.errors."""

from __future__ import annotations


class AssistantError(Exception):
    """Base class. ``status`` is the HTTP status, ``type``/``code`` fill the OpenAI error shape."""

    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ConfigError(AssistantError):
    status = 500
    type = "config_error"


class ModelFileError(AssistantError):
    """The GGUF file is missing, truncated or not GGUF."""

    status = 500
    type = "model_error"
    code = "model_file"


class BadRequest(AssistantError):
    status = 400
    type = "invalid_request_error"


class NotFound(AssistantError):
    status = 404
    type = "not_found_error"
    code = "not_found"


class Unauthorized(AssistantError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class QueueFull(AssistantError):
    status = 429
    type = "rate_limit_error"
    code = "queue_full"

    def __init__(self, message: str, *, retry_after: int = 2) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BackendError(AssistantError):
    """The model backend (embedded or remote) failed."""

    status = 502
    type = "backend_error"
    code = "backend_failed"


class PayloadTooLarge(AssistantError):
    status = 413
    type = "invalid_request_error"
    code = "too_large"


class PartDisabled(AssistantError):
    """A part of the daemon (memory, feeds, skills, ...) is turned off in config."""

    status = 503
    type = "service_unavailable"
    code = "part_disabled"
