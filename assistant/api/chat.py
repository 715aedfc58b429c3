"""POST /v1/chat/completions: OpenAI-compatible, non-streaming and server-sent events.

Extension: ``conversation_id`` in the body (or the ``X-Conversation-Id`` header) continues a stored
conversation, so a client sends only its new message. Every response carries the id back, in the body
and in the ``X-Conversation-Id`` header, and the stored answer's ``turn_id`` (in the body, or the final
chunk of a stream) for ``POST /api/feedback``. ``persona`` (see ``GET /api/personas``) chooses the
conversation's persona from this turn on; its sampling settings apply where the request sets none.

The request body, and what each OpenAI field does here: assistant.api.chat_request (docs/openai-api.md).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from sse_starlette.sse import EventSourceResponse

from assistant.api.chat_request import (
    ChatRequest,
    explicit_fields,
    json_output,
    to_messages,
    to_params,
    tool_use,
)
from assistant.api.deps import ServicesDep
from assistant.api.error_shape import error_body
from assistant.api.limits import CheckedJSONRoute
from assistant.api.links import links_to_each, with_links
from assistant.chat.turn import ChatTurn, TurnRequest
from assistant.core.errors import AssistantError
from assistant.llm.tool_calls import CALL_OPEN, parse_calls
from assistant.llm.types import Usage

router = APIRouter(route_class=CheckedJSONRoute)


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
    req.check()  # a field asking for what the daemon does not do: a 400 naming it
    json_out = json_output(req)
    tools = tool_use(req)
    turn = await services.chat.begin(TurnRequest(
        to_messages(req, json_out, tools),
        to_params(req, services.settings.model.max_tokens, json_out, tools),
        req.conversation_id or x_conversation_id,
        persona=req.persona,
        explicit=explicit_fields(req),
        remember=req.memory if req.memory is not None else services.settings.memory.remember_api_chats,
        skill_choice=req.skill_choice is not False,
    ))
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
        stream = _sse(turn, meta, include_usage, tools is not None)
        return EventSourceResponse(stream, headers=headers, ping=15, sep="\n")
    end = await turn.complete(gone=request.is_disconnected)
    if end is None:
        return None  # the client went away; the generation stopped and nothing is stored
    message: dict[str, Any] = {"role": "assistant", "content": end.text}
    finish: str = end.finish_reason
    calls = parse_calls(end.text) if tools is not None else None
    if calls:  # the answer is a call (it is stored as the model wrote it, so the next turn reads it back)
        message = {"role": "assistant", "content": None, "tool_calls": [c.as_openai() for c in calls]}
        finish = "tool_calls"
    body = {
        **meta,
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
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


async def _sse(
    turn: ChatTurn, meta: dict[str, Any], include_usage: bool, tools: bool = False
) -> AsyncIterator[dict[str, str]]:
    """The answer as OpenAI's chunks. With tools, text that may begin a call is held until it is known: a
    call goes out as ``delta.tool_calls`` (whole, one chunk a call) and ends with ``tool_calls``."""
    first = {"role": "assistant", "content": ""}
    yield {"data": _chunk(meta, first, None, recalled=turn.recalled)}
    encode = _content_chunk_encoder(meta)
    held, deciding = "", tools
    try:
        async for event in turn.stream():
            if isinstance(event, str):
                if deciding:
                    held += event
                    probe = held.lstrip()
                    if CALL_OPEN.startswith(probe) or probe.startswith((CALL_OPEN, "{")):
                        continue  # may be, or is, a call (a bare call object too)
                    deciding, event, held = False, held, ""
                yield {"data": encode(event)}
                continue
            finish: str = event.finish_reason
            if held:
                calls = parse_calls(held)
                if calls:
                    for i, call in enumerate(calls):
                        yield {"data": _chunk(meta, {"tool_calls": [{"index": i, **call.as_openai()}]}, None)}
                    finish = "tool_calls"
                else:
                    yield {"data": encode(held)}
            usage = _usage(event.usage)
            yield {"data": _chunk(meta, {}, finish, usage=usage, turn_id=event.turn_id)}
            if include_usage:
                yield {
                    "data": json.dumps(
                        {**meta, "object": "chat.completion.chunk", "choices": [], "usage": usage}
                    )
                }
            yield {"data": "[DONE]"}
    except AssistantError as exc:
        yield {"data": json.dumps(error_body(exc.message, exc.type, exc.code))}
        yield {"data": "[DONE]"}


@router.get("/api/personas")
def list_personas(services: ServicesDep) -> dict[str, Any]:
    """The personas a conversation can use (``persona`` in a chat request, or ``/persona NAME``)."""
    book = services.chat.personas
    return {"default": book.default, "data": [p.as_dict() for p in book.all()]}
