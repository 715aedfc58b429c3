"""POST /v1/embeddings: memory's embedder in OpenAI's shape.

``input`` is a string or a list of strings; ``encoding_format`` is ``float`` (a JSON list) or ``base64``
(little-endian float32, what OpenAI sends and its SDK asks for by default). Vectors have unit length. The
daemon has one embedder (``memory.embedder``), so ``model`` is accepted with no effect and the answer names
the embedder. Refused by name: token-id inputs, ``dimensions`` other than the embedder's own, a text longer
than the embedder's window (it would be cut silently), and more than ``MAX_INPUTS`` texts. With memory off
the embedder is not loaded: a 503 saying how to turn memory on.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from assistant.api.deps import ServicesDep
from assistant.api.limits import CheckedJSONRoute
from assistant.core.errors import BadRequest

router = APIRouter(route_class=CheckedJSONRoute)

MAX_INPUTS = 256  # texts in one request
MAX_INPUT_CHARS = 20_000  # characters in one text (the window is far smaller; this bounds tokenizing)


class EmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: str | list[str] | list[int] | list[list[int]] = Field(examples=["the spare key is under the mat"])
    model: str | None = Field(
        None, max_length=256, description="accepted, no effect: the daemon has one embedder"
    )
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, description="refused unless it is the embedder's own dimension")
    user: str | None = Field(None, max_length=256, description="accepted, no effect")


def _texts(req: EmbeddingsRequest) -> list[str]:
    raw = [req.input] if isinstance(req.input, str) else req.input
    if not raw:
        raise BadRequest("input must hold at least one text", code="invalid_input")
    if any(not isinstance(t, str) for t in raw):
        raise BadRequest(
            "input as token ids is not supported: the tokenizers differ; send text",
            code="unsupported_parameter",
        )
    texts: list[str] = [t for t in raw if isinstance(t, str)]
    if len(texts) > MAX_INPUTS:
        raise BadRequest(f"input holds {len(texts)} texts; at most {MAX_INPUTS} a request", code="too_long")
    for i, t in enumerate(texts):
        if not t.strip():
            raise BadRequest(f"input[{i}] is empty; send text to embed", code="invalid_input")
        if len(t) > MAX_INPUT_CHARS:
            raise BadRequest(
                f"input[{i}] is longer than {MAX_INPUT_CHARS} characters; split it", code="too_long"
            )
    return texts


def _embed(embedder: Any, texts: Sequence[str]) -> tuple[list[list[float]], int]:
    """The vectors and the tokens read; a text longer than the embedder's window is a 400 naming it."""
    window = getattr(embedder, "max_tokens", None)
    limit = int(window) - 2 if window else None  # the model's [CLS] and [SEP]
    tokens = 0
    for i, t in enumerate(texts):
        n = int(embedder.token_count(t))
        if limit is not None and n > limit:
            raise BadRequest(
                f"input[{i}] is {n} tokens; the embedder reads at most {limit}: split it (it would be cut)",
                code="context_length_exceeded",
            )
        tokens += n
    return embedder.embed(list(texts)), tokens


def _base64(vec: Sequence[float]) -> str:
    import numpy as np

    return base64.b64encode(np.asarray(vec, dtype="<f4").tobytes()).decode("ascii")


@router.post("/v1/embeddings")
async def create_embeddings(req: EmbeddingsRequest, services: ServicesDep) -> dict[str, Any]:
    """Embed text with memory's embedder (OpenAI's request and answer)."""
    memory = services.require("memory", services.memory)
    embedder = memory.embedder
    dim = int(embedder.dim)
    if req.dimensions is not None and req.dimensions != dim:
        raise BadRequest(
            f"dimensions is not supported: the embedder's vectors have {dim} dimensions; leave dimensions out",
            code="unsupported_parameter",
        )
    texts = _texts(req)
    vectors, tokens = await run_in_threadpool(_embed, embedder, texts)
    encode = _base64 if req.encoding_format == "base64" else list
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(vectors)],
        "model": str(getattr(embedder, "model_name", None) or services.settings.memory.embedder),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
