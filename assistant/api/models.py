from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from assistant.api.deps import ServicesDep

router = APIRouter()


@router.get("/v1/models")
def list_models(services: ServicesDep) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": services.llm.name, "object": "model", "created": 0, "owned_by": "local"}],
    }
