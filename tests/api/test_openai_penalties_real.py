"""OpenAI's presence and frequency penalties on the real model (slow: SmolLM2): they change a greedy answer,
the same on the native loop as on llama.cpp's own penalties sampler (``Llama.generate``)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from assistant.config import ModelSettings
from assistant.llm.model_file import bundled_model_path
from assistant.llm.types import ChatMessage, GenerationParams, collect

pytestmark = pytest.mark.slow

STORY = [
    ChatMessage("system", "You are a helpful assistant."),
    ChatMessage("user", "Write a short story about a lighthouse keeper."),
]


def greedy_story(path: Path, loop: str, **penalties: float) -> str:
    from assistant.llm.llama import LlamaBackend

    backend = LlamaBackend.load(
        path,
        ModelSettings(n_ctx=1024, generation_loop=loop, prompt_cache_mb=0, n_batch=16),  # type: ignore[arg-type]
    )
    try:
        params = GenerationParams(max_tokens=64, temperature=0.0, **penalties)  # type: ignore[arg-type]
        return collect(backend.stream_chat(STORY, params, threading.Event())).text
    finally:
        backend.close()


def test_penalties_change_the_story_the_same_on_both_paths(tmp_path: Path) -> None:
    path = bundled_model_path(tmp_path, "smollm2")
    strong: dict[str, Any] = {"frequency_penalty": 1.0, "presence_penalty": 0.5}
    plain = greedy_story(path, "native")
    native = greedy_story(path, "native", **strong)
    assert native != plain and native.strip()
    assert greedy_story(path, "python", **strong) == native
