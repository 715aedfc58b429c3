from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from assistant.api.deps import ServicesDep
from assistant.api.limits import Offset
from assistant.chat.conversations import check_conversation_id
from assistant.core.errors import NotFound

router = APIRouter(prefix="/api/conversations")


@router.get("")
def list_conversations(
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    return {"data": services.conversations.list(limit, offset)}


@router.get("/{conversation_id}")
def get_conversation(conversation_id: str, services: ServicesDep) -> dict[str, Any]:
    check_conversation_id(conversation_id)
    if not services.conversations.exists(conversation_id):
        raise NotFound(f"no conversation {conversation_id!r}")
    turns = services.conversations.turns(conversation_id)
    return {
        "id": conversation_id,
        # turn_id: a stored answer can be rated (POST /api/feedback) when the conversation is shown again
        "messages": [
            {"role": t.role, "content": t.content, "created_at": t.created_at, "turn_id": t.id} for t in turns
        ],
    }


@router.delete("/{conversation_id}")
def delete_conversation(conversation_id: str, services: ServicesDep) -> dict[str, Any]:
    check_conversation_id(conversation_id)
    if not services.conversations.delete(conversation_id):
        raise NotFound(f"no conversation {conversation_id!r}")
    return {"id": conversation_id, "deleted": True}
