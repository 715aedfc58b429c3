"""/api/memories: add a note, hybrid search, paged list, get and delete."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from assistant.api.deps import MemoryDep
from assistant.api.limits import CheckedJSONRoute, Offset
from assistant.api.links import links_to_each, with_links
from assistant.core.errors import BadRequest, NotFound

router = APIRouter(prefix="/api/memories", route_class=CheckedJSONRoute)
MAX_BATCH = 512
CONVERSATION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+-]*$"


class MemoryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(examples=["The boiler was serviced in March"])
    source: str = "note"
    # An id, never a path: no slash, backslash, NUL, control character or leading dot.
    conversation_id: str | None = Field(None, max_length=64, pattern=CONVERSATION_ID_PATTERN)
    metadata: dict[str, str | int | float | bool | None] | None = None


class MemoryBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    memories: list[MemoryIn] = Field(min_length=1)


def _filters(
    source: list[str] | None,
    conversation_id: str | None,
    since: datetime | None,
    until: datetime | None,
    where: list[str] | None = None,
) -> Any:
    from memory.keyword import METADATA_KEY_RULE, Filters, is_metadata_key

    sources = tuple(s for s in (source or []) if not s.endswith(":"))
    prefixes = [s for s in (source or []) if s.endswith(":")]
    if len(prefixes) > 1 or (prefixes and sources):
        raise BadRequest("give either exact sources or one source prefix such as 'feed:'", code="filter")
    pairs = []
    for item in where or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BadRequest(f"where must be key=value, got {_short(item)!r}", code="filter")
        if not is_metadata_key(key):
            raise BadRequest(f"where: the key {_short(key)!r} must be {METADATA_KEY_RULE}", code="filter")
        pairs.append((key, value))
    stamps: dict[str, float | None] = {}
    for name, when in (("since", since), ("until", until)):
        if when is not None and when.tzinfo is None:
            raise BadRequest(f"{name} needs a timezone, e.g. 2026-01-15T00:00:00Z", code="filter")
        try:
            stamps[name] = when.timestamp() if when is not None else None
        except (OverflowError, ValueError, OSError):  # year 1 at +14:00 is before datetime.min in UTC
            raise BadRequest(f"{name} is out of range", code="filter") from None
    return Filters(
        sources=sources,
        source_prefix=prefixes[0] if prefixes else None,
        conversation_id=conversation_id,
        since=stamps["since"],
        until=stamps["until"],
        where=tuple(pairs),
    )


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


_MEMORY_ROUTES = [("GET", "/api/memories/{memory_id}"), ("DELETE", "/api/memories/{memory_id}")]


@router.post(
    "",
    status_code=201,
    responses=with_links(
        201, "The stored memory", **links_to_each(_MEMORY_ROUTES, "memory_id", "$response.body#/id")
    ),
)
async def add_memory(body: MemoryIn, memory: MemoryDep) -> dict[str, Any]:
    memory_id = await run_in_threadpool(
        memory.add, body.text, body.source, body.conversation_id, body.metadata
    )
    from memory.service import record_dict

    record = memory.get(memory_id)
    if record is None:  # deleted between the two calls
        raise NotFound(f"no memory {memory_id!r}")
    return record_dict(record)


@router.post("/batch", status_code=201)
async def add_memories(body: MemoryBatchIn, memory: MemoryDep) -> dict[str, Any]:
    """Add up to 512 memories at once (used by `assistant memory import`); all or none are stored."""
    from memory.service import NewMemory

    if len(body.memories) > MAX_BATCH:
        raise BadRequest(f"at most {MAX_BATCH} memories per batch", code="batch_too_large")
    items = [NewMemory(m.text, m.source, m.conversation_id, m.metadata) for m in body.memories]
    ids = await run_in_threadpool(memory.add_many, items)
    return {"ids": ids}


@router.get("/search")
async def search_memories(
    memory: MemoryDep,
    q: Annotated[str, Query(min_length=1, max_length=2000)],
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    mode: Literal["hybrid", "dense", "keyword"] = "hybrid",
    source: Annotated[
        list[str] | None, Query(description="user, assistant, note, skill:x, or a prefix 'feed:'")
    ] = None,
    conversation_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    where: Annotated[list[str] | None, Query(description="metadata key=value")] = None,
    recency: bool | None = None,
) -> dict[str, Any]:
    filters = _filters(source, conversation_id, since, until, where)
    hits = await run_in_threadpool(memory.search, q, k, filters, mode=mode, recency=recency)
    return {"query": q, "mode": mode, "data": [h.as_dict() for h in hits]}


@router.get("")
def list_memories(
    memory: MemoryDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
    source: Annotated[list[str] | None, Query()] = None,
    conversation_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    from memory.service import record_dict

    records, total = memory.list(_filters(source, conversation_id, since, until), limit, offset)
    return {"data": [record_dict(r) for r in records], "total": total, "limit": limit, "offset": offset}


@router.get("/{memory_id}")
def get_memory(memory_id: str, memory: MemoryDep) -> dict[str, Any]:
    from memory.service import record_dict

    record = memory.get(memory_id)
    if record is None:
        raise NotFound(f"no memory {memory_id!r}")
    return record_dict(record)


@router.delete("/{memory_id}")
async def delete_memory(memory_id: str, memory: MemoryDep) -> dict[str, Any]:
    if not await run_in_threadpool(memory.delete, memory_id):
        raise NotFound(f"no memory {memory_id!r}")
    return {"id": memory_id, "deleted": True}
