"""The llama.cpp backend measures its own prompt reading speed (the recall budget's input) on real prefills,
on SmolLM2: a new prompt is timed, a prompt read from the KV cache adds no sample of its own."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from assistant.config import ModelSettings
from assistant.llm.bundled import BUNDLED
from assistant.llm.model_file import bundled_model_path
from assistant.llm.types import ChatMessage, GenerationParams, collect

pytestmark = pytest.mark.slow

NOTES = " ".join(f"Note {i}: the spare key for shed {i} is under pot {i * 7}." for i in range(12))


def test_the_backend_measures_how_fast_it_reads_a_prompt(tmp_path: Path) -> None:
    if not BUNDLED["smollm2"].installed():
        pytest.skip(f"smollm2 is not installed: {BUNDLED['smollm2'].install}")
    from assistant.llm.llama import LlamaBackend

    backend = LlamaBackend.load(
        bundled_model_path(tmp_path, "smollm2"), ModelSettings(n_ctx=1024, n_batch=64, prompt_cache_mb=0)
    )
    try:
        assert backend.prefill_meter.rate() is None
        messages = [ChatMessage("system", "You are brief."), ChatMessage("user", f"{NOTES}\nWhere is key 3?")]
        params = GenerationParams(temperature=0.0, max_tokens=4)
        collect(backend.stream_chat(messages, params, threading.Event()))
        assert backend.native is not None and backend.native.last_prefilled > 100
        first = backend.prefill_meter.rate()
        assert first is not None and first > 0
        collect(backend.stream_chat(messages, params, threading.Event()))  # the same prompt: from the cache
        assert backend.native.last_prefilled < 8
        assert backend.prefill_meter.rate() == first  # a cached prompt is no reading speed
    finally:
        backend.close()
