"""/api/feeds routes that need no network (subscribing with ``refresh: false``); fetching is tested against
a real local feed server in feeds/test_service.py."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from assistant.app import create_app
from assistant.config import load_settings
from assistant.services import build_services
from tests.fakes import FakeLLM, FixedClock


def test_one_feed_by_id(client: TestClient) -> None:
    r = client.post("/api/feeds", json={"url": "https://news.example/rss.xml", "title": "News", "refresh": False})
    assert r.status_code == 201 and r.json()["fetch"] is None
    feed = r.json()["feed"]
    got = client.get(f"/api/feeds/{feed['id']}")
    assert got.status_code == 200 and got.json() == feed
    assert got.json()["title"] == "News" and got.json()["url"] == "https://news.example/rss.xml"
    assert client.get(f"/api/feeds/{feed['id'] + 1}").status_code == 404
    assert client.get("/api/feeds/not-a-number").status_code == 400
    assert client.delete(f"/api/feeds/{feed['id']}").status_code == 200
    assert client.get(f"/api/feeds/{feed['id']}").status_code == 404


def test_feeds_turned_off_answer_503_naming_the_setting(tmp_path: Path) -> None:
    settings = load_settings(
        None, data_dir=tmp_path / "data", memory={"enabled": False}, scheduler={"enabled": False},
        feeds={"enabled": False},
    )  # fmt: skip
    with TestClient(create_app(build_services(settings, clock=FixedClock(), llm=FakeLLM()))) as client:
        r = client.get("/api/feeds/1")
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "part_disabled" and "[feeds] enabled = true" in r.json()["error"]["message"]
