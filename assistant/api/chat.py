"""POST /v1/chat/completions: OpenAI-compatible, non-streaming and server-sent events.

Extension: ``conversation_id`` in the body (or the ``X-Conversation-Id`` header) continues a stored
conversation, so a client sends only its new message. Every response carries the id back, in the body
and in the ``X-Conversation-Id`` header, and the stored answer's ``turn_id`` (in the body, or the final
chunk of a stream) for ``POST /api/feedback``. ``persona`` (see ``GET /api/personas``) chooses the
conversation's persona from this turn on; its sampling settings apply where the request sets none.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sse_starlette.sse import EventSourceResponse

from assistant.api.deps import ServicesDep
from assistant.api.error_shape import error_body
from assistant.api.limits import CheckedJSONRoute
from assistant.api.links import links_to_each, with_links
from assistant.chat.turn import ChatTurn
from assistant.core.errors import AssistantError, BadRequest
from assistant.llm.types import ChatMessage, GenerationParams, Usage

router = APIRouter(route_class=CheckedJSONRoute)

MAX_MESSAGE_CHARS = 200_000
MAX_MESSAGES = 5_000  # a 3,000-turn history from a client that resends everything still fits
MAX_TOTAL_CHARS = 2_000_000  # all messages together; the context is fitted from the newest turn back
MAX_STOP_CHARS = 200


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        texts = []
        for part in self.content:
            if part.type != "text":
                raise BadRequest(
                    f"content part type {part.type!r} is not supported; send text", code="content"
                )
            texts.append(part.text or "")
        return "".join(texts)


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    messages: list[MessageIn] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(0.7, ge=0, le=2)
    top_p: float = Field(0.95, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)
    n: int = 1
    conversation_id: str | None = None
    persona: str | None = Field(None, min_length=1, max_length=64)
    memory: bool | None = Field(
        None, description="store this turn in memory (the daemon's own clients send true); absent: memory.remember_api_chats"
    )

    @field_validator("n")
    @classmethod
    def _one_choice(cls, v: int) -> int:
        if v != 1:
            raise ValueError("only n=1 is supported")
        return v

    @field_validator("stop")
    @classmethod
    def _stops(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list) and len(v) > 4:
            raise ValueError("at most 4 stop sequences")
        stops = [v] if isinstance(v, str) else v or []
        if any(len(s) > MAX_STOP_CHARS for s in stops):
            raise ValueError(f"a stop sequence is longer than {MAX_STOP_CHARS} characters")
        return v


def _to_messages(req: ChatRequest) -> list[ChatMessage]:
    out = []
    total = 0
    for m in req.messages:
        text = m.text()
        if len(text) > MAX_MESSAGE_CHARS:
            raise BadRequest(f"a message is longer than {MAX_MESSAGE_CHARS} characters", code="too_long")
        total += len(text)
        if total > MAX_TOTAL_CHARS:
            raise BadRequest(
                f"the messages hold more than {MAX_TOTAL_CHARS} characters in all; send a conversation_id "
                "and only the new message instead of the whole history", code="too_long",
            )  # fmt: skip
        role = "system" if m.role == "developer" else m.role
        out.append(ChatMessage(role, text))
    return out


def _params(req: ChatRequest, default_max: int) -> GenerationParams:
    stop = (req.stop,) if isinstance(req.stop, str) else tuple(req.stop or ())
    return GenerationParams(
        max_tokens=req.max_completion_tokens or req.max_tokens or default_max,
        temperature=req.temperature,
        top_p=req.top_p,
        stop=stop,
        seed=req.seed,
    )


def _explicit(req: ChatRequest) -> set[str]:
    """The sampling fields the request set itself (a persona's settings apply to the others)."""
    given = req.model_fields_set
    fields = {"temperature", "top_p"} & given
    if {"max_tokens", "max_completion_tokens"} & given:
        fields.add("max_tokens")
    return fields


def _usage(u: Usage | None) -> dict[str, int]:
    u = u or Usage()
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
    }


_CONVERSATION_ROUTES = [
    ("GET", "/api/conversations/{conversation_id}"),
    ("DELETE", "/api/conversations/{conversation_id}"),
]


@router.post(
    "/v1/chat/completions",
    responses=with_links(
        200,
        "The completion (or its event stream)",
        **links_to_each(_CONVERSATION_ROUTES, "conversation_id", "$response.body#/conversation_id"),
    ),
)
async def chat_completions(
    req: ChatRequest,
    request: Request,
    services: ServicesDep,
    x_conversation_id: Annotated[str | None, Header()] = None,
) -> Any:
    turn = await services.chat.begin(
        _to_messages(req),
        _params(req, services.settings.model.max_tokens),
        req.conversation_id or x_conversation_id,
        persona=req.persona,
        explicit=_explicit(req),
        remember=req.memory if req.memory is not None else services.settings.memory.remember_api_chats,
    )
    meta = {
        "id": "chatcmpl-" + uuid.uuid4().hex[:24],
        "created": int(time.time()),
        "model": services.llm.name,
        "conversation_id": turn.conversation_id,
        "persona": turn.persona or services.chat.personas.default,
    }
    headers = {"X-Conversation-Id": turn.conversation_id}
    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return EventSourceResponse(_sse(turn, meta, include_usage), headers=headers, ping=15, sep="\n")
    end = await turn.complete(gone=request.is_disconnected)
    if end is None:
        return None  # the client went away; the generation stopped and nothing is stored
    body = {
        **meta,
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": end.text}, "finish_reason": end.finish_reason}
        ],
        "usage": _usage(end.usage),
        "recalled": turn.recalled,
        "turn_id": end.turn_id,
    }
    return JSONResponse(body, headers=headers)


def _chunk(meta: dict[str, Any], delta: dict[str, Any], finish: str | None, **extra: Any) -> str:
    body = {
        **meta,
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return json.dumps(body, ensure_ascii=False)


def _content_chunk_encoder(meta: dict[str, Any]) -> Any:
    """A fast encoder for the per-token chunks: the constant JSON around the text is built once."""
    marker = "\u0000TEXT\u0000"
    before, after = _chunk(meta, {"content": marker}, None).split(json.dumps(marker, ensure_ascii=False))

    def encode(text: str) -> str:
        return before + json.dumps(text, ensure_ascii=False) + after

    return encode


async def _sse(turn: ChatTurn, meta: dict[str, Any], include_usage: bool) -> AsyncIterator[dict[str, str]]:
    first = {"role": "assistant", "content": ""}
    yield {"data": _chunk(meta, first, None, recalled=turn.recalled)}
    encode = _content_chunk_encoder(meta)
    try:
        async for event in turn.stream():
            if isinstance(event, str):
                yield {"data": encode(event)}
                continue
            usage = _usage(event.usage)
            yield {"data": _chunk(meta, {}, event.finish_reason, usage=usage, turn_id=event.turn_id)}
            if include_usage:
                yield {"data": json.dumps({**meta, "object": "chat.completion.chunk", "choices": [], "usage": usage})}
            yield {"data": "[DONE]"}
    except AssistantError as exc:
        yield {"data": json.dumps(error_body(exc.message, exc.type, exc.code))}
        yield {"data": "[DONE]"}


@router.get("/api/personas")
def list_personas(services: ServicesDep) -> dict[str, Any]:
    """The personas a conversation can use (``persona`` in a chat request, or ``/persona NAME``)."""
    book = services.chat.personas
    return {"default": book.default, "data": [p.as_dict() for p in book.all()]}
