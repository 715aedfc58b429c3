from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from assistant.app import create_app
from assistant.config import Settings, load_settings
from assistant.services import Services, build_services
from tests.fakes import FakeLLM, FixedClock

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test with the reason when it is absent (a user's clone)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: ../shared/data is only beside the repo in CI and dev machines")
    return path


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the user's config or environment, or writes to their data dir."""
    import os

    for key in list(os.environ):
        if key.startswith("ASSISTANT_"):
            monkeypatch.delenv(key)
    # Starlette's TestClient sends "Host: testserver"; the request guard answers only to names it knows.
    monkeypatch.setenv("ASSISTANT_SERVER__ALLOWED_HOSTS", '["testserver"]')
    monkeypatch.setenv("ASSISTANT_FEEDS__ALLOWED_NETWORKS", '["127.0.0.0/8"]')  # test feeds are on loopback
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    # The model's choice of a skill is one more model call per chat turn: tests of it turn it on.
    monkeypatch.setenv("ASSISTANT_SKILLS__CHOICE", "false")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Optional heavy parts are off by default; tests that need them turn them on. A test that loads the real
    # model gets SmolLM2, the fast one ("auto" would pick a Qwen model on a big machine).
    return load_settings(
        None, data_dir=tmp_path / "data", memory={"enabled": False}, scheduler={"enabled": False},
        model={"bundled": "smollm2"},
    )


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def fake_llm() -> FakeLLM:
    return FakeLLM()


@pytest.fixture
def services(settings: Settings, clock: FixedClock, fake_llm: FakeLLM) -> Services:
    return build_services(settings, clock=clock, llm=fake_llm)


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services)) as c:
        yield c
