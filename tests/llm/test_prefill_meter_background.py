"""A prompt read ahead while nobody waits (``GenerationParams.background``) is no sample of the model's
reading speed: the recall budget follows the prefills a user waits for (slow: SmolLM2, both loops)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from assistant.config import ModelSettings
from assistant.llm.model_file import bundled_model_path
from assistant.llm.types import ChatMessage, GenerationParams, collect

pytestmark = pytest.mark.slow

LONG = [
    ChatMessage("user", "Please read this. " + "The lighthouse keeper climbs the stairs every night. " * 12)
]


@pytest.mark.parametrize("loop", ["native", "python"])
def test_a_background_prefill_adds_no_sample(tmp_path: Path, loop: str) -> None:
    from assistant.llm.llama import LlamaBackend

    backend = LlamaBackend.load(
        bundled_model_path(tmp_path, "smollm2"),
        ModelSettings(n_ctx=1024, prompt_cache_mb=0, n_batch=64, generation_loop=loop),  # type: ignore[arg-type]
    )
    try:
        ahead = GenerationParams(max_tokens=1, temperature=0.0, background=True)
        collect(backend.stream_chat(LONG, ahead, threading.Event()))
        assert backend.prefill_meter.rate() is None
        backend.llm.reset()
        collect(backend.stream_chat(LONG, GenerationParams(max_tokens=1, temperature=0.0), threading.Event()))
        assert backend.prefill_meter.rate() is not None
    finally:
        backend.close()
