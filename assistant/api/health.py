from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from assistant.api.deps import ServicesDep
from assistant.services import Services

router = APIRouter()


@router.get("/healthz")
def healthz(services: ServicesDep) -> dict[str, Any]:
    return {
        "status": "ok",
        "model": services.llm.name,
        "busy": services.worker.busy,
        "waiting": services.worker.waiting,
    }
