"""The end of a streamed answer is not kept waiting for the copy of its prompt state (slow: SmolLM2).

A stream's final delta is what releases the text the worker holds for the next chunk
(``server.stream_interval_ms``); the copy of the KV cache into the RAM cache (milliseconds) follows it, before
the backend lets another request in (issue 28: short answers ended one state copy later than llama-server's).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from assistant.config import ModelSettings
from assistant.llm.model_file import bundled_model_path
from assistant.llm.types import ChatMessage, GenerationParams

pytestmark = pytest.mark.slow


def test_the_answers_end_goes_out_before_its_prompt_state_is_copied(tmp_path: Path) -> None:
    from assistant.llm.llama import LlamaBackend

    backend = LlamaBackend.load(
        bundled_model_path(tmp_path, "smollm2"), ModelSettings(n_ctx=1024, prompt_cache_mb=16, n_batch=16)
    )
    try:
        params = GenerationParams(max_tokens=8, temperature=0.0)
        stream = backend.stream_chat([ChatMessage("user", "Say hello.")], params, threading.Event())
        for delta in stream:
            if delta.finish_reason is not None:
                break
        assert len(backend.cache.cache_state) == 0  # the end went out before the copy
        assert not backend._lock.acquire(blocking=False)  # and no other request gets in before it
        assert next(stream, None) is None
        assert len(backend.cache.cache_state) == 1
    finally:
        backend.close()
