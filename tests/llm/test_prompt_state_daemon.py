"""The real daemon, started twice on one data dir (issue 28; slow: SmolLM2): the first start warms the
default persona's system prompt and writes its state; the second start loads it from disk, and its first
chat gives the first start's answer at temperature 0, token for token (the same prefix state, the rest
evaluated the same way)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.daemon import start_daemon

pytestmark = pytest.mark.slow

CONFIG = (
    '[server]\nlog_level = "INFO"\n'
    '[model]\nbundled = "smollm2"\nn_threads = 2\nn_ctx = 1024\n'
    "[memory]\nenabled = false\n[scheduler]\nenabled = false\n[notify]\nenabled = false\n[skills]\nenabled = false\n"
)
QUESTION = "Name one colour of the rainbow."


def chat(url: str) -> dict:  # type: ignore[type-arg]
    body = {"messages": [{"role": "user", "content": QUESTION}], "max_tokens": 12, "temperature": 0}
    r = httpx.post(url + "/v1/chat/completions", json=body, timeout=300)
    r.raise_for_status()
    return dict(r.json())


def wait_for(cond, what: str, timeout: float = 300.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)  # polling a background thread's file, not waiting for time to pass


def test_the_second_start_loads_the_system_prompt_from_disk(tmp_path: Path) -> None:
    data = tmp_path / "data"
    states = data / "prompt-states"
    with start_daemon(data, config_toml=CONFIG) as d:
        wait_for(lambda: "system prompt warmed" in d.log(), "the warm-up")
        assert "system prompt warmed (built)" in d.log()
        wait_for(lambda: any(states.glob("*.state")), "the state file")
        first = chat(d.url)
    (state,) = states.glob("*.state")
    with start_daemon(data, config_toml=CONFIG) as d:
        wait_for(lambda: "system prompt warmed" in d.log(), "the warm-up")
        assert "system prompt warmed (disk)" in d.log()
        second = chat(d.url)
    assert second["choices"][0]["message"]["content"] == first["choices"][0]["message"]["content"]
    assert second["usage"]["prompt_tokens"] == first["usage"]["prompt_tokens"]
    assert list(states.glob("*.state")) == [state]
