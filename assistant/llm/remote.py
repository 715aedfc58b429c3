"""The remote backend: any OpenAI-compatible server (llama.cpp's server, Ollama, vLLM) over HTTP.

Context: the server's tokenizer is not at hand, so a long conversation is fitted to ``model.n_ctx`` (set
it to the server's context size) with a conservative estimate of each message's tokens
(``estimate_tokens``): the oldest turns are dropped as in the embedded backend (assistant.llm.fit), and a
system text plus last message that cannot fit is a 400, not a request the server would fail.

Templates and control tokens: messages go to the server as JSON and the server applies its own chat
template and tokenizes the result. Whether a ``<|im_start|>`` or ``<end_of_turn>`` typed into a message
becomes a real turn delimiter there is the server's doing (llama.cpp's server, for one, parses special
tokens in the rendered prompt); this backend cannot tokenize for it. Text from untrusted sources should
be filtered before it reaches any backend.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from assistant.config import ModelSettings
from assistant.core.errors import BackendError, BadRequest, ConfigError
from assistant.core.openai_stream import delta_text, iter_chunks
from assistant.llm.fit import fit_messages
from assistant.llm.types import ChatMessage, Delta, GenerationParams, Usage

MESSAGE_OVERHEAD = 8  # tokens a chat template adds around one message (role header, end of turn)
PROMPT_OVERHEAD = 8  # the generation prompt, BOS


def estimate_tokens(text: str) -> int:
    """An upper estimate of the tokens of ``text`` in an unknown tokenizer.

    Measured on Gemma 3's tokenizer: English prose runs 3.3 characters a token, code 3.0, random
    alphanumerics 1.4, digits 1 (many tokenizers split numbers into single digits), CJK 2.1, emoji 1.2.
    So: a token per digit, one per two other ASCII characters, one per non-ASCII character.
    """
    n = len(text)
    ascii_chars = len(text.encode("ascii", "ignore"))
    digits = sum(map(text.count, "0123456789"))
    return digits + (ascii_chars - digits + 1) // 2 + (n - ascii_chars)


def message_tokens(m: ChatMessage) -> int:
    return estimate_tokens(m.content) + MESSAGE_OVERHEAD


def prompt_tokens(messages: Sequence[ChatMessage]) -> int:
    return sum(message_tokens(m) for m in messages) + PROMPT_OVERHEAD


class RemoteBackend:
    def __init__(
        self, base_url: str, model: str | None, api_key: str | None, timeout: float, n_ctx: int = 4096
    ) -> None:
        self.n_ctx = n_ctx
        self.base_url = base_url.rstrip("/")
        if not self.base_url.endswith("/v1"):
            self.base_url += "/v1"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(
            headers=headers, timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0))
        )
        self.model = model or self._first_model()
        self.name = self.model

    @classmethod
    def from_settings(cls, ms: ModelSettings) -> RemoteBackend:
        if not ms.base_url:
            raise ConfigError('model.base_url: required when model.backend = "openai"')
        return cls(ms.base_url, ms.remote_model, ms.api_key, ms.timeout, ms.n_ctx)

    def _first_model(self) -> str:
        try:
            r = self.client.get(self.base_url + "/models")
            r.raise_for_status()
            data = r.json().get("data") or []
            return str(data[0]["id"]) if data else "remote"
        except (httpx.HTTPError, ValueError, KeyError, IndexError):
            return "remote"

    def close(self) -> None:
        self.client.close()

    def stream_chat(
        self, messages: list[ChatMessage], params: GenerationParams, cancel: threading.Event
    ) -> Iterator[Delta]:
        reserve = min(params.max_tokens, self.n_ctx // 4)
        fitted = fit_messages(
            messages,
            self.n_ctx - reserve,
            message_tokens,
            prompt_tokens,
            cancel,
            context_note=f"model.n_ctx is {self.n_ctx} tokens (estimated; the server counts its own)",
        )
        if fitted is None:
            yield Delta("", "cancelled", Usage(0, 0))
            return
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in fitted.messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            # The estimate is high, so estimate + max_tokens within n_ctx keeps the server's sum within too.
            "max_tokens": max(1, min(params.max_tokens, self.n_ctx - fitted.cost)),
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        if params.response_format:  # the server constrains the answer (llama.cpp's server, Ollama, vLLM do)
            body["response_format"] = json.loads(params.response_format)
        if params.tools:  # the server shows them to its model and sends calls back as delta.tool_calls
            body.update(json.loads(params.tools))
        if params.presence_penalty:
            body["presence_penalty"] = params.presence_penalty
        if params.frequency_penalty:
            body["frequency_penalty"] = params.frequency_penalty
        finish: str | None = None
        usage: Usage | None = None
        pieces = 0
        calls: dict[int, dict[str, str]] = {}  # the server's streamed tool calls, by index
        try:
            with self.client.stream("POST", self.base_url + "/chat/completions", json=body) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    if resp.status_code in (400, 413, 422):  # the request: too long, or not accepted
                        raise BadRequest(
                            f"the model server refused the request ({resp.status_code}): {resp.text[:300]}",
                            code="context_length_exceeded" if "context" in resp.text.lower() else "rejected",
                        )
                    raise BackendError(
                        f"the model server at {self.base_url} answered {resp.status_code}: {resp.text[:300]}"
                    )
                for chunk in iter_chunks(resp.iter_lines()):
                    if cancel.is_set():
                        finish = "cancelled"
                        break
                    if chunk.get("usage"):
                        u = chunk["usage"]
                        usage = Usage(int(u.get("prompt_tokens", 0)), int(u.get("completion_tokens", 0)))
                    text = delta_text(chunk)
                    if text:
                        pieces += 1
                        yield Delta(text)
                    for choice in chunk.get("choices") or []:
                        finish = choice.get("finish_reason") or finish
                        _gather_calls(calls, (choice.get("delta") or {}).get("tool_calls"))
        except httpx.HTTPError as exc:
            raise BackendError(f"cannot reach the model server at {self.base_url}: {exc}") from None
        except ValueError as exc:
            raise BackendError(
                f"the model server at {self.base_url} sent a malformed stream: {exc}"
            ) from None
        if calls:  # written as the embedded model writes them: the route reads both the same way
            from assistant.llm.tool_calls import call_text

            yield Delta("\n".join(call_text(c["name"], c["arguments"]) for _, c in sorted(calls.items())))
        final = finish if finish in ("stop", "length", "cancelled") else "stop"
        yield Delta("", final, usage or Usage(0, pieces))  # type: ignore[arg-type]


def _gather_calls(calls: dict[int, dict[str, str]], deltas: object) -> None:
    """Add a chunk's ``delta.tool_calls`` pieces to the calls gathered so far (OpenAI streams a call's name
    once and its arguments in pieces)."""
    if not isinstance(deltas, list):
        return
    for d in deltas:
        if not isinstance(d, dict):
            continue
        index = d.get("index", len(calls)) if isinstance(d.get("index", 0), int) else len(calls)
        entry = calls.setdefault(index, {"name": "", "arguments": ""})
        function = d.get("function") or {}
        entry["name"] += str(function.get("name") or "")
        entry["arguments"] += str(function.get("arguments") or "")
