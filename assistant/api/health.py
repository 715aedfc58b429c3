from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, Request

from assistant.api.deps import ServicesDep
from assistant.api.guard import token_matches

router = APIRouter()


@router.get("/healthz")
def healthz(services: ServicesDep, request: Request) -> dict[str, Any]:
    """Whether the daemon answers. On a daemon with ``server.api_token`` it is public (a service manager's
    probe has no token), so without the token it says only that: the pid, the model and whether the user
    is busy are for whoever holds the token."""
    token = services.settings.server.api_token
    if token and not token_matches(token, request.headers.get("authorization")):
        return {"status": "ok"}
    return {
        "status": "ok",
        "pid": os.getpid(),  # `assistant doctor` reports the daemon's own memory (PSS/USS) from it
        "model": services.llm.name,
        "busy": services.worker.busy,
        "waiting": services.worker.waiting,
    }
