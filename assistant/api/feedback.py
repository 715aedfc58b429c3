"""Thumbs up and down on chat answers: ``POST /api/feedback`` rates an answer, ``GET /api/feedback`` shows
what memory learned, ``DELETE /api/feedback/{rating_id}`` undoes one rating (memory/feedback.py)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from assistant.api.deps import MemoryDep, ServicesDep
from assistant.api.limits import SQLITE_INT_MAX, CheckedJSONRoute, Offset
from assistant.core.errors import NotFound, PartDisabled
from memory.feedback import FeedbackStore, Rating
from memory.service import MemoryService

router = APIRouter(prefix="/api/feedback", route_class=CheckedJSONRoute)
RatingId = Annotated[int, Path(ge=0, le=SQLITE_INT_MAX)]


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    conversation_id: str = Field(min_length=1, max_length=64)
    turn_id: int | None = Field(
        None, ge=1, le=SQLITE_INT_MAX, description="the answer's turn_id; none: the newest answer"
    )
    rating: Literal["good", "bad"]


def _store(memory: MemoryService) -> FeedbackStore:
    if memory.feedback is None:
        raise PartDisabled("feedback is not set up for this memory")
    return memory.feedback


def _shown(rating: Rating, memory: MemoryService) -> dict[str, Any]:
    """A rating with what it taught: each recalled memory (its text, or gone) preferred or demoted when the
    answer used it, left as it was ("not used") when the answer ignored it."""
    moved = "preferred" if rating.good else "demoted"
    memories = []
    for ids, effect in ((rating.memory_ids, moved), (rating.not_used, "not used")):
        for memory_id in ids:
            record = memory.get(memory_id)
            memories.append({"id": memory_id, "text": record.text if record else None, "effect": effect})
    return {**rating.as_dict(), "memories": memories}


@router.post("", status_code=201)
async def rate_answer(body: FeedbackIn, services: ServicesDep, memory: MemoryDep) -> dict[str, Any]:
    _store(memory)
    _, _, rating = await run_in_threadpool(
        services.chat.rate, body.conversation_id, body.turn_id, body.rating == "good"
    )
    return _shown(rating, memory)


@router.get("")
def list_feedback(
    memory: MemoryDep, limit: Annotated[int, Query(ge=1, le=500)] = 50, offset: Offset = 0
) -> dict[str, Any]:
    store = _store(memory)
    return {"data": [_shown(r, memory) for r in store.ratings(limit, offset)], "total": store.count()}


@router.delete("/{rating_id}")
def undo_feedback(rating_id: RatingId, memory: MemoryDep) -> dict[str, Any]:
    if not _store(memory).undo(rating_id):
        raise NotFound(f"no rating {rating_id}")
    return {"id": rating_id, "undone": True}
