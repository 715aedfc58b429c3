"""Every file and folder under the data dir is private (issue 25): folders 0700, files 0600 after a daemon
start (the way `assistant serve` prepares its process), a chat that reaches memory (Chroma's files and
folders), a schedule (APScheduler's SQLite job store), and the CLI's chat history."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from assistant.app import create_app
from assistant.cli.client import chat_history_file
from assistant.core.sqlite_db import keep_private
from tests.fakes import FakeLLM, FixedClock
from tests.memory_fakes import memory_services


@pytest.fixture
def restored_umask() -> Iterator[None]:
    old = os.umask(0o022)  # what a login shell usually has
    try:
        yield
    finally:
        os.umask(old)


def _not_private(root: Path) -> list[str]:
    wrong = []
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode != (0o700 if path.is_dir() else 0o600):
            wrong.append(f"{path.relative_to(root)} {mode:o}")
    return wrong


def test_a_started_daemon_keeps_its_data_dir_private(tmp_path: Path, restored_umask: None) -> None:
    data = tmp_path / "data"
    (data / "old").mkdir(parents=True, mode=0o755)  # left by an earlier version
    (data / "old" / "notes.txt").write_text("x")
    os.chmod(data / "old" / "notes.txt", 0o644)
    keep_private(data)  # what `assistant serve` does before it builds anything
    services = memory_services(data, FixedClock(), FakeLLM(), scheduler=True)
    try:
        with TestClient(create_app(services)) as api:
            r = api.post(
                "/v1/chat/completions",
                json={
                    "messages": [{"role": "user", "content": "Remember: my bike is blue."}],
                    "memory": True,
                },
            )
            assert r.status_code == 200, r.text
            r = api.post("/api/schedules", json={"skill": "time", "schedule": "every 15 minutes"})
            assert r.status_code == 201, r.text
    finally:
        services.close()
    names = {p.name for p in data.rglob("*")}
    assert "schedules.sqlite3" in names and "chroma.sqlite3" in names, sorted(names)
    assert _not_private(data) == []


def test_the_chat_history_file_and_its_folder_are_private(tmp_path: Path, restored_umask: None) -> None:
    data = tmp_path / "new-data"
    history = chat_history_file(data)
    history.write_text("hello\n")  # prompt_toolkit appends to the file it was given
    assert history.parent == data
    assert _not_private(data) == []
