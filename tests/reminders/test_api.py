"""/api/reminders, the CLI (`assistant remind`, `assistant reminders`) on a real daemon app on 127.0.0.1, and a
real 2-second timer arriving on the SSE notification stream."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from assistant.app import create_app
from assistant.cli import main
from assistant.config import Settings, load_settings
from assistant.core.clock import SystemClock
from assistant.services import Services, build_services
from tests.fakes import FakeLLM, FixedClock
from tests.server import serve_app

NOW = datetime(2026, 3, 6, 16, 20, tzinfo=UTC)  # Friday 17:20 in Berlin


@pytest.fixture
def berlin(tmp_path: Path) -> Settings:
    return load_settings(
        None, data_dir=tmp_path / "data", memory={"enabled": False}, scheduler={"enabled": False},
        timezone="Europe/Berlin", notify={"desktop": False},
    )  # fmt: skip


@pytest.fixture
def api(berlin: Settings) -> Iterator[tuple[TestClient, Services, FixedClock]]:
    clock = FixedClock(NOW)
    services = build_services(berlin, clock=clock, llm=FakeLLM())
    with TestClient(create_app(services)) as c:
        yield c, services, clock


def test_the_api(api: tuple[TestClient, Services, FixedClock]) -> None:
    c, services, clock = api
    r = c.post("/api/reminders", json={"text": "remind me in 20 minutes to take the pasta out"})
    assert r.status_code == 201, r.text
    pasta = r.json()
    assert pasta["confirmation"] == "I'll remind you to take the pasta out at 17:40 today, in 20 minutes."
    r = c.post("/api/reminders", json={"kind": "timer", "what": "tea", "in_seconds": 240})
    assert r.status_code == 201 and r.json()["confirmation"].startswith("Tea timer set for 4 minutes")
    tea = r.json()
    r = c.post("/api/reminders", json={"text": "remind me at 5 to feed the dog"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "ambiguous_time"
    assert r.json()["error"]["message"] == "5 in the morning or in the evening?"
    assert c.post("/api/reminders", json={"text": "hello"}).status_code == 400
    assert c.post("/api/reminders", json={"kind": "timer"}).status_code == 400
    assert [x["id"] for x in c.get("/api/reminders").json()["data"]] == [tea["id"], pasta["id"]]
    assert c.get(f"/api/reminders/{pasta['id']}").json()["what"] == "take the pasta out"
    assert c.get("/api/reminders/nope").status_code == 404
    r = c.patch(f"/api/reminders/{pasta['id']}", json={"when": "at 6pm", "what": "drain the pasta"})
    assert r.status_code == 200, r.text
    assert r.json()["what"] == "drain the pasta" and r.json()["description"].startswith("reminder to drain the pasta: 18:00 today")
    r = c.post(f"/api/reminders/{pasta['id']}/cancel")
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    clock.advance(minutes=4)
    assert services.reminders is not None
    services.reminders.fire_due()
    assert c.post(f"/api/reminders/{tea['id']}/cancel").json()["error"]["code"] == "already_fired"
    r = c.post(f"/api/reminders/{tea['id']}/snooze", json={"minutes": 5})
    assert r.status_code == 200 and r.json()["state"] == "pending"
    assert c.delete(f"/api/reminders/{tea['id']}").json() == {"id": tea["id"], "deleted": True}
    assert c.get("/api/reminders", params={"all": "true"}).json()["data"][0]["state"] == "cancelled"


def test_off_is_503_naming_the_setting(settings: Settings, fake_llm: FakeLLM) -> None:
    off = settings.model_copy(update={"reminders": settings.reminders.model_copy(update={"enabled": False})})
    with TestClient(create_app(build_services(off, clock=FixedClock(), llm=fake_llm))) as c:
        r = c.get("/api/reminders")
    assert r.status_code == 503 and "[reminders] enabled = true" in r.json()["error"]["message"]


def test_the_cli(berlin: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    services = build_services(berlin, clock=FixedClock(NOW), llm=FakeLLM())
    with serve_app(create_app(services)) as url:
        cfg = tmp_path / "config.toml"
        cfg.write_text(f"[server]\nport = {url.rsplit(':', 1)[1]}\n")
        base = ["--config", str(cfg)]
        assert main([*base, "remind", "in 20 minutes to take the pasta out"]) == 0
        out = capsys.readouterr().out
        m = re.fullmatch(r"I'll remind you to take the pasta out at 17:40 today, in 20 minutes\. \[(r\w+)\]\n", out)
        assert m, out
        assert main([*base, "remind", "set a timer for 10 minutes"]) == 0
        capsys.readouterr()
        assert main([*base, "reminders"]) == 0
        listing = capsys.readouterr().out.splitlines()
        assert listing[0].startswith("timer: 17:30 today (in 10 minutes)")
        assert main([*base, "reminders", "cancel", m.group(1)]) == 0
        assert capsys.readouterr().out.startswith("cancelled reminder to take the pasta out")
        assert main([*base, "reminders", "cancel", "rnothere"]) == 2


def test_a_two_second_timer_arrives_on_the_sse_stream(berlin: Settings) -> None:
    services = build_services(berlin, clock=SystemClock(), llm=FakeLLM())
    with serve_app(create_app(services)) as url, httpx.Client(timeout=httpx.Timeout(15.0)) as client:
        with client.stream("GET", url + "/api/notifications/stream") as stream:
            assert stream.status_code == 200
            r = httpx.post(url + "/api/reminders", json={"kind": "timer", "what": "egg", "in_seconds": 2})
            assert r.status_code == 201, r.text
            for line in stream.iter_lines():  # bounded by the client's read timeout
                if line.startswith("data:"):
                    event = json.loads(line.removeprefix("data:").strip())
                    if event.get("source") == "reminders":
                        break
    assert event["title"] == "Timer done: egg" and event["urgent"] is True
    assert event["data"]["reminder_id"] == r.json()["id"]
