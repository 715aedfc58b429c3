"""/api/notifications through the app (TestClient): posting, validation, history, auth."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from assistant.app import create_app
from assistant.config import load_settings
from assistant.notify.outbox import Outbox
from assistant.services import build_services
from tests.fakes import FakeLLM, FixedClock


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_client(tmp_path: Path, **overrides: object) -> TestClient:
    settings = load_settings(
        None,
        data_dir=tmp_path / "data",
        memory={"enabled": False},
        scheduler={"enabled": False},
        **overrides,  # type: ignore[arg-type]
    )
    return TestClient(create_app(build_services(settings, clock=FixedClock(), llm=FakeLLM())))


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    with make_client(tmp_path, notify={"desktop": False}) as c:
        yield c


def test_post_stores_and_returns_the_notification(api: TestClient, tmp_path: Path) -> None:
    r = api.post("/api/notifications", json={"title": "Hi", "body": "there", "data": {"x": 1}})
    assert r.status_code == 201
    assert r.json() == {
        "id": 1,
        "title": "Hi",
        "body": "there",
        "source": "api",
        "urgent": False,
        "data": {"x": 1},
        "created_at": "2026-01-15T12:00:00.000+00:00",
    }
    # Committed: another connection to the outbox file sees it while the app still runs.
    other = Outbox(tmp_path / "data" / "notifications.sqlite3")
    try:
        assert other.count() == 1
    finally:
        other.close()


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title must be a non-empty string"),
        ({"title": "x" * 301}, "title"),
        ({"title": "t", "urgent": "very"}, "urgent"),
        ({"title": "t", "data": [1, 2]}, "data"),
        ({"title": "t", "source": ""}, "source"),
        ({"title": "t", "colour": "red"}, "colour"),
        ({"title": "t", "body": 5}, "body"),
    ],
)
def test_bad_posts_are_400_naming_the_field(api: TestClient, payload: dict, fragment: str) -> None:
    r = api.post("/api/notifications", json=payload)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert fragment in err["message"] and err["type"] == "invalid_request_error"
    assert api.get("/api/notifications").json()["total"] == 0


def test_history_is_newest_first_with_delivery_status(tmp_path: Path) -> None:
    # A webhook that nobody listens on (a port just freed): nothing can be delivered, all three stay pending.
    with make_client(tmp_path, notify={"desktop": False, "webhook_url": f"http://127.0.0.1:{closed_port()}/"}) as api:
        for i in range(3):
            assert (
                api.post("/api/notifications", json={"title": f"n{i}", "source": "test"}).status_code == 201
            )
        page = api.get("/api/notifications", params={"limit": 2, "offset": 0}).json()
        assert page["total"] == 3 and [n["title"] for n in page["data"]] == ["n2", "n1"]
        assert page["channels"]["webhook"]["pending"] == 3
        first = page["data"][0]
        assert set(first) == {"id", "title", "body", "source", "urgent", "data", "created_at", "delivery"}
        assert first["delivery"]["held_until"] is None
        assert first["delivery"]["channels"]["webhook"]["status"] == "pending"
        rest = api.get("/api/notifications", params={"limit": 2, "offset": 2}).json()
        assert [n["title"] for n in rest["data"]] == ["n0"]
        one = api.get(f"/api/notifications/{first['id']}").json()
        assert one["title"] == "n2"


def test_bad_queries_and_missing_ids(api: TestClient) -> None:
    assert api.get("/api/notifications", params={"limit": 0}).status_code == 400
    assert api.get("/api/notifications", params={"offset": -1}).status_code == 400
    assert api.get("/api/notifications/12345").status_code == 404
    assert api.get("/api/notifications/abc").status_code == 400
    r = api.get("/api/notifications/stream", headers={"Last-Event-ID": "yesterday"})
    assert r.status_code == 400 and "Last-Event-ID" in r.json()["error"]["message"]
    assert api.get("/api/notifications/stream", params={"last_event_id": "-3"}).status_code == 400


def test_token_required_and_query_token_only_for_the_event_stream(tmp_path: Path) -> None:
    with make_client(tmp_path, server={"api_token": "tok"}, notify={"desktop": False}) as api:
        assert api.get("/api/notifications").status_code == 401
        assert api.get("/api/notifications", params={"token": "tok"}).status_code == 401
        assert api.get("/api/notifications/stream", params={"token": "wrong"}).status_code == 401
        assert api.post("/api/notifications", params={"token": "tok"}, json={"title": "t"}).status_code == 401
        r = api.post("/api/notifications", headers={"Authorization": "Bearer tok"}, json={"title": "t"})
        assert r.status_code == 201


def test_disabled_notifier_answers_503_naming_the_setting(tmp_path: Path) -> None:
    with make_client(tmp_path, notify={"enabled": False}) as api:
        assert api.app.state.services.notifier is None  # type: ignore[attr-defined]
        r = api.get("/api/notifications")
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "part_disabled"
        assert "[notify] enabled = true" in r.json()["error"]["message"]
