"""The default bundled model (qwen0.5b) through the daemon's HTTP API (slow: the model is joined from its
part packages once, then the daemon loads it). Kept to a few questions: the rest of the real-model tests
run on SmolLM2, and `assistant eval everyday` measures the default on 198 questions."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from assistant.cli.eval_everyday import check_answer
from assistant.llm.model_file import bundled_model_path
from tests.daemon import Daemon, start_daemon

pytestmark = pytest.mark.slow

DEFAULT = "qwen0.5b"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    data_dir = tmp_path_factory.mktemp("default-model")
    bundled_model_path(data_dir, DEFAULT)  # joined and verified once here; the daemon finds it in place
    toml = (
        f'[model]\nbundled = "{DEFAULT}"\nn_ctx = 1024\nmax_tokens = 64\n'
        "[memory]\nenabled = false\n[scheduler]\nenabled = false\n"
    )
    with start_daemon(data_dir, config_toml=toml) as d:
        yield d


def ask(d: Daemon, question: str) -> str:
    r = httpx.post(
        d.url + "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": question}], "temperature": 0, "max_tokens": 48},
        timeout=300,
    )
    r.raise_for_status()
    return str(r.json()["choices"][0]["message"]["content"])


def test_the_default_adds_17_and_25(daemon: Daemon) -> None:
    answer = ask(daemon, "What is 17 + 25?")
    assert check_answer({"type": "number", "values": [42]}, answer), answer


def test_the_default_knows_which_day_comes_after_tuesday(daemon: Daemon) -> None:
    answer = ask(daemon, "Which day comes after Tuesday?")
    assert check_answer({"type": "accept", "values": ["wednesday"], "reject": ["monday", "thursday"]}, answer), answer
