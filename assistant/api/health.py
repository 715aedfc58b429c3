from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from assistant.api.deps import ServicesDep

router = APIRouter()


@router.get("/healthz")
def healthz(services: ServicesDep) -> dict[str, Any]:
    return {
        "status": "ok",
        "model": services.llm.name,
        "busy": services.worker.busy,
        "waiting": services.worker.waiting,
    }
