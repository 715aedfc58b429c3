"""The remote backend: any OpenAI-compatible server (llama.cpp's server, Ollama, vLLM) over HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx

from assistant.config import ModelSettings
from assistant.core.errors import BackendError, ConfigError
from assistant.core.openai_stream import delta_text, iter_chunks
from assistant.llm.types import ChatMessage, Delta, GenerationParams, Usage


class RemoteBackend:
    def __init__(self, base_url: str, model: str | None, api_key: str | None, timeout: float) -> None:
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
        return cls(ms.base_url, ms.remote_model, ms.api_key, ms.timeout)

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
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        finish: str | None = None
        usage: Usage | None = None
        pieces = 0
        try:
            with self.client.stream("POST", self.base_url + "/chat/completions", json=body) as resp:
                if resp.status_code >= 400:
                    resp.read()
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
        except httpx.HTTPError as exc:
            raise BackendError(f"cannot reach the model server at {self.base_url}: {exc}") from None
        except ValueError as exc:
            raise BackendError(
                f"the model server at {self.base_url} sent a malformed stream: {exc}"
            ) from None
        final = finish if finish in ("stop", "length", "cancelled") else "stop"
        yield Delta("", final, usage or Usage(0, pieces))  # type: ignore[arg-type]
