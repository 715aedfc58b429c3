from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter

from assistant.api.deps import ServicesDep

router = APIRouter()


@router.get("/healthz")
def healthz(services: ServicesDep) -> dict[str, Any]:
    return {
        "status": "ok",
        "pid": os.getpid(),  # `assistant doctor` reports the daemon's own memory (PSS/USS) from it
        "model": services.llm.name,
        "busy": services.worker.busy,
        "waiting": services.worker.waiting,
    }
