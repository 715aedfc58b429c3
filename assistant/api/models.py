from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from assistant.api.deps import ServicesDep
from assistant.services import Services

router = APIRouter()


@router.get("/v1/models")
def list_models(services: Annotated[Services, Depends(get_services)]) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": services.llm.name, "object": "model", "created": 0, "owned_by": "local"}],
    }
