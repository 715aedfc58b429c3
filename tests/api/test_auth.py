from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from assistant.api.guard import token_matches
from assistant.app import create_app
from assistant.config import load_settings
from assistant.services import build_services
from tests.fakes import FakeLLM, FixedClock


@pytest.fixture
def secured(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = load_settings(
        None,
        data_dir=tmp_path,
        server={"api_token": "s3cret-token"},
        memory={"enabled": False},
        scheduler={"enabled": False},
    )
    with TestClient(create_app(build_services(settings, clock=FixedClock(), llm=FakeLLM()))) as c:
        yield c


MSG = {"messages": [{"role": "user", "content": "hi"}]}


def test_health_is_open(secured: TestClient) -> None:
    assert secured.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "s3cret-token"},
        {"Authorization": "Basic s3cret-token"},
    ],
)
def test_everything_else_needs_the_token(secured: TestClient, headers: dict[str, str]) -> None:
    for method, path, body in [
        ("GET", "/v1/models", None),
        ("POST", "/v1/chat/completions", MSG),
        ("GET", "/api/conversations", None),
    ]:
        r = secured.request(method, path, json=body, headers=headers)
        assert r.status_code == 401, (path, r.text)
        assert r.json()["error"]["type"] == "authentication_error"


def test_right_token_works(secured: TestClient) -> None:
    h = {"Authorization": "Bearer s3cret-token"}
    assert secured.get("/v1/models", headers=h).status_code == 200
    assert secured.post("/v1/chat/completions", json=MSG, headers=h).status_code == 200
    # ?token= is only for the notification event stream (EventSource cannot set headers), never elsewhere
    assert secured.get("/api/conversations?token=s3cret-token").status_code == 401
    assert secured.post("/v1/chat/completions?token=s3cret-token", json=MSG).status_code == 401


def test_token_matches() -> None:
    assert token_matches("abc", "Bearer abc")
    assert token_matches("abc", "bearer abc")
    assert not token_matches("abc", "Bearer abcd")
    assert not token_matches("abc", None)
    assert not token_matches("abc", "Bearer ")
