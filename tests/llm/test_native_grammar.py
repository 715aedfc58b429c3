"""Greedy generation under a grammar in the native loop (slow: the bundled SmolLM2).

The grammar is tried on the largest logit alone first, as llama.cpp's own common sampler does; only when the
grammar refuses that token is it applied to the whole vocabulary. Greedy picks the first largest logit the
grammar allows either way, so the answer is the same token for token, and the whole-vocabulary pass (a copy
of every logit and a grammar check of each token) runs only on the tokens where the grammar had to step in.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from assistant.config import ModelSettings
from assistant.llm import native_loop
from assistant.llm.json_grammar import schema_grammar
from assistant.llm.model_file import bundled_model_path
from assistant.llm.types import ChatMessage, Completion, GenerationParams, collect

pytestmark = pytest.mark.slow

SCHEMA = {
    "type": "object",
    "properties": {
        "skill": {"type": "string", "enum": ["none", "search_memory", "save_note"]},
        "note": {"type": "string", "maxLength": 60},
    },
    "required": ["skill", "note"],
    "additionalProperties": False,
}
ASKED = (
    "keep in mind that the wifi password is hunter2",
    "What colour is my bike?",
    "Write a poem about the sea.",
)


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from assistant.llm.llama import LlamaBackend

    path: Path = bundled_model_path(tmp_path_factory.mktemp("models"), "smollm2")
    backend = LlamaBackend.load(path, ModelSettings(n_ctx=1024, prompt_cache_mb=0, n_batch=16))
    yield backend
    backend.close()


def _choose(backend: Any, text: str, **kw: Any) -> Completion:
    messages = [
        ChatMessage("system", "Answer with JSON: the skill to use for the message and a note."),
        ChatMessage("user", text),
    ]
    params = GenerationParams(max_tokens=48, temperature=0.0, grammar=schema_grammar(SCHEMA), **kw)
    backend.llm.reset()  # the same prompt batches for both runs: the same logits
    return collect(backend.stream_chat(messages, params, threading.Event()))


@pytest.mark.parametrize("text", ASKED)
def test_the_same_answer_as_applying_the_grammar_to_every_token(native, monkeypatch, text: str) -> None:  # type: ignore[no-untyped-def]
    fast = _choose(native, text)
    monkeypatch.setattr(native_loop, "_grammar_first", lambda *a: None)  # the whole vocabulary at every token
    full = _choose(native, text)
    assert fast.text == full.text and '"skill"' in fast.text
    assert fast.usage == full.usage and fast.finish_reason == full.finish_reason


def test_the_whole_vocabulary_is_masked_only_where_the_grammar_steps_in(native, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import llama_cpp

    calls = []
    whole = llama_cpp.llama_sampler_sample

    def counted(*a: Any) -> int:
        calls.append(1)
        return int(whole(*a))

    monkeypatch.setattr(llama_cpp, "llama_sampler_sample", counted)
    out = _choose(native, ASKED[0])
    assert out.usage.completion_tokens > 4
    assert len(calls) < out.usage.completion_tokens
