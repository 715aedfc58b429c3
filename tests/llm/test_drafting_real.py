"""Speculative decoding on the real models (slow): prompt lookup on SmolLM2, a model drafting for itself,
Qwen 0.5B drafting for Qwen 1.5B, and a draft of another vocabulary refused.

At temperature 0 a drafted answer is the model's own greedy answer, but the drafts are verified in one batch
and a batched evaluation sums in another order than one token at a time: at a near-tie (SmolLM2's free
answers have top logits 0.05 apart) the pick can flip, and the text goes another way from there. So the
texts are compared on a prompt whose answer copies its notes (clear margins), never bit for bit on free text;
that every kept token is the target's argmax on its verification logits is tested on a fake target
(tests/llm/test_drafting.py), where the logits are exact.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import llama_cpp
import pytest

from assistant.config import ModelSettings
from assistant.llm.bundled import BUNDLED
from assistant.llm.drafting import DraftVocabularyError
from assistant.llm.model_file import bundled_model_path
from assistant.llm.types import ChatMessage, Completion, GenerationParams, collect

pytestmark = pytest.mark.slow

NOTES = (
    "Notes: the planting day moved from Saturday 14 March to Saturday 21 March, 10:00 to 14:00. Tom Becker "
    "collects the 40 bags of compost from Green Valley Farm. The budget is 1,250 euros."
)
COPY = [
    ChatMessage("system", "You are a helpful assistant."),
    ChatMessage("user", f"Repeat these notes word for word, then stop.\n\n{NOTES}"),
]


def _installed(name: str, tmp: Path) -> Path:
    if not BUNDLED[name].installed():
        pytest.skip(f"{name} is not installed: {BUNDLED[name].install}")
    return bundled_model_path(tmp, name)


def _load(path: Path, draft: str = "none", **kw: Any) -> Any:
    from assistant.llm.llama import LlamaBackend

    ms = ModelSettings(n_ctx=1024, n_batch=64, prompt_cache_mb=0, draft=draft, draft_tokens=6, **kw)
    return LlamaBackend.load(path, ms)


def _greedy(backend: Any, messages: list[ChatMessage], max_tokens: int = 64) -> Completion:
    params = GenerationParams(temperature=0.0, max_tokens=max_tokens)
    return collect(backend.stream_chat(messages, params, threading.Event()))


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _installed("smollm2", tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def plain_copy(smollm2: Path) -> str:
    b = _load(smollm2)
    try:
        return _greedy(b, COPY).text
    finally:
        b.close()


def test_prompt_lookup_keeps_the_answer_and_drafts_most_of_a_copy(smollm2: Path, plain_copy: str) -> None:
    b = _load(smollm2, "lookup")
    try:
        done = _greedy(b, COPY)
        stats = b.native.last_draft
        assert done.text == plain_copy
        assert stats is not None and stats.drafted > 0
        assert stats.acceptance > 0.5, stats
        assert stats.steps < done.usage.completion_tokens  # fewer evaluations than tokens
        # no draft is left in the KV cache past the answer, and a follow-up reuses the turn's tokens
        top = int(llama_cpp.llama_memory_seq_pos_max(b.native.mem, 0)) + 1
        assert top == b.llm.n_tokens
        follow = [*COPY, ChatMessage("assistant", done.text), ChatMessage("user", "Now only the budget.")]
        _greedy(b, follow, 16)
        assert b.last_reused_tokens > len(NOTES) // 8
    finally:
        b.close()


def test_sampled_requests_are_not_drafted(smollm2: Path) -> None:
    b = _load(smollm2, "lookup")
    try:
        params = GenerationParams(temperature=0.7, max_tokens=16, seed=3)
        collect(b.stream_chat(COPY, params, threading.Event()))
        assert b.native.last_draft is None
    finally:
        b.close()


def test_a_model_drafting_for_itself_keeps_the_answer(smollm2: Path, plain_copy: str) -> None:
    b = _load(smollm2, str(smollm2))
    try:
        done = _greedy(b, COPY)
        assert done.text == plain_copy
        stats = b.native.last_draft
        assert stats is not None and stats.acceptance > 0.6, stats
    finally:
        b.close()


def test_a_draft_model_of_another_vocabulary_is_refused(smollm2: Path, tmp_path: Path) -> None:
    gemma = _installed("gemma3", tmp_path)
    with pytest.raises(DraftVocabularyError, match="draft model has 262144 tokens"):
        _load(smollm2, str(gemma))


def test_qwen_half_b_drafts_for_qwen_one_and_a_half_b(tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp("qwen")
    big = _installed("qwen1.5b", tmp)
    small = _installed("qwen0.5b", tmp)
    plain = _load(big)
    try:
        expected = _greedy(plain, COPY, 48).text
    finally:
        plain.close()
    b = _load(big, str(small))
    try:
        done = _greedy(b, COPY, 48)
        stats = b.native.last_draft
    finally:
        b.close()
    assert done.text == expected
    assert stats is not None and stats.acceptance > 0.5, stats
