"""The system prompt's evaluated state survives a restart (issue 28; slow: the real SmolLM2 model).

Each "start" loads the model afresh with the same prompt-state directory, as the daemon does after a boot.
The first start evaluates the system prompt and writes its state; the next start's first chat loads it and
evaluates only what follows it, with the same answer at temperature 0 (the same prefix state, the same
suffix batches: computed the same way, so compared token for token). A damaged file is ignored and rebuilt;
another system prompt misses.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from assistant.config import ModelSettings
from assistant.llm.model_file import bundled_model_path
from assistant.llm.types import ChatMessage, Completion, GenerationParams, collect

pytestmark = pytest.mark.slow

SYSTEM = (
    "Calendar: today is Monday, 7 December 2026 (2026-12-07), time zone Europe/Berlin.\n\n"
    "You are a helpful personal assistant running privately on the user's own device. Answer briefly and "
    "plainly, in one or two short sentences, and start with the answer itself."
)
OTHER_DAY = SYSTEM.replace("7 December", "8 December").replace("Monday", "Tuesday")
QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bundled_model_path(tmp_path_factory.mktemp("models"), "smollm2")


def start(path: Path, states: Path, **kw: Any) -> Any:
    from assistant.llm.llama import LlamaBackend

    ms = ModelSettings(n_ctx=1024, n_threads=2, n_batch=64, prompt_cache_mb=0, **kw)
    backend = LlamaBackend.load(path, ms, state_dir=states)
    backend.keep_system_prompts([SYSTEM, OTHER_DAY])  # as the warm-up names the personas' prompts
    return backend


def chat(backend: Any, system: str = SYSTEM) -> Completion:
    messages = [ChatMessage("system", system), ChatMessage("user", QUESTION)]
    params = GenerationParams(temperature=0.0, max_tokens=24)
    return collect(backend.stream_chat(messages, params, threading.Event()))


def test_the_second_start_reuses_the_state_and_answers_the_same(model_path: Path, tmp_path: Path) -> None:
    states = tmp_path / "prompt-states"
    first = start(model_path, states)
    try:
        one = chat(first)
        assert first.system_states.last_source == "built"
        assert first.last_reused_tokens == 0  # evaluated here: the prefix and the rest
    finally:
        first.close()  # waits for the state being written
    files = list(states.glob("*.state"))
    assert len(files) == 1

    second = start(model_path, states)
    try:
        two = chat(second)
        assert second.system_states.last_source == "disk"
        anchor = len(second._anchor([ChatMessage("system", SYSTEM)]))
        assert anchor > 50  # the calendar and the persona's words
        assert second.last_reused_tokens == anchor  # only what follows the system prompt was evaluated
        assert two.usage is not None and one.usage is not None
        assert two.usage.prompt_tokens == one.usage.prompt_tokens
        assert two.text == one.text
        assert second.warm_system_prompt(SYSTEM) == "live"
    finally:
        second.close()


def test_a_warm_start_loads_the_state_before_the_first_chat(model_path: Path, tmp_path: Path) -> None:
    states = tmp_path / "prompt-states"
    first = start(model_path, states)
    try:
        assert first.warm_system_prompt(SYSTEM) == "built"
        one = chat(first)
        assert first.system_states.last_source == "live"
    finally:
        first.close()
    second = start(model_path, states)
    try:
        assert second.warm_system_prompt(SYSTEM) == "disk"
        assert chat(second).text == one.text
        assert second.system_states.last_source == "live"
    finally:
        second.close()


def test_a_damaged_state_is_ignored_and_rebuilt(model_path: Path, tmp_path: Path) -> None:
    states = tmp_path / "prompt-states"
    first = start(model_path, states)
    try:
        one = chat(first)
    finally:
        first.close()
    (path,) = states.glob("*.state")
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0xFF  # a flipped bit in the KV data: the checksum no longer matches
    path.write_bytes(bytes(raw))

    second = start(model_path, states)
    try:
        two = chat(second)
        assert second.system_states.last_source == "built"
        assert second.last_reused_tokens == 0
        assert two.text == one.text
    finally:
        second.close()
    assert path.read_bytes() != bytes(raw)  # rebuilt

    path.write_bytes(path.read_bytes()[: len(raw) // 2])  # torn
    third = start(model_path, states)
    try:
        assert chat(third).text == one.text
        assert third.system_states.last_source == "built"
    finally:
        third.close()


def test_another_system_prompt_or_context_misses(model_path: Path, tmp_path: Path) -> None:
    states = tmp_path / "prompt-states"
    first = start(model_path, states)
    try:
        chat(first)
    finally:
        first.close()
    second = start(model_path, states)
    try:
        chat(second, OTHER_DAY)
        assert second.system_states.last_source == "built"
        chat(second, "You are a pirate. " * 10)  # a client's own system text: its state is not kept
        assert second.system_states.last_source == "none"
    finally:
        second.close()
    third = start(model_path, states, flash_attn=True)
    try:
        chat(third)
        assert third.system_states.last_source == "built"  # another context setting: another state
    finally:
        third.close()
    assert len(list(states.glob("*.state"))) == 3
