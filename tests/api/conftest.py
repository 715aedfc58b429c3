"""The real daemon (`assistant serve`) on the default bundled model, started once for the slow API tests that
need it (the agent framework's run, tool_choice and parallel_tool_calls with the official client)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.daemon import Daemon, start_daemon

DEFAULT_MODEL = "qwen0.5b"


@pytest.fixture(scope="session")
def default_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    from assistant.llm.model_file import bundled_model_path

    data_dir = tmp_path_factory.mktemp("default-model-api")
    bundled_model_path(data_dir, DEFAULT_MODEL)  # joined and verified once here; the daemon finds it in place
    toml = (
        f'[model]\nbundled = "{DEFAULT_MODEL}"\nn_ctx = 2048\n'
        "[memory]\nenabled = false\n[scheduler]\nenabled = false\n"
    )
    with start_daemon(data_dir, config_toml=toml) as d:
        yield d
