"""Structured logs: one JSON object (or text line) per record, with the id of the request (also returned as
X-Request-ID) or scheduled run it belongs to; the model's lines carry the id of the request that asked."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from assistant.app import create_app
from assistant.config import Settings, load_settings
from assistant.core.errors import BadRequest
from assistant.core.logs import LogFormat, accept_request_id, configure_logging, request_id, run_context
from assistant.services import Services, build_services
from tests.fakes import FakeLLM, FixedClock, RecordingNotifier

Lines = Callable[[], list[dict[str, Any]]]


@contextmanager
def _installed(fmt: LogFormat) -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    handler = configure_logging("INFO", fmt)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def json_lines(capsys: pytest.CaptureFixture[str]) -> Iterator[Lines]:
    def read() -> list[dict[str, Any]]:
        return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]

    with _installed("json"):
        yield read


@pytest.fixture
def text_lines(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], str]]:
    with _installed("text"):
        yield lambda: capsys.readouterr().err


@pytest.fixture
def api(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services)) as client:
        yield client


def access(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in lines if r["logger"] == "assistant.access"]


def test_each_request_gets_an_id_in_its_header_and_its_log_line(api: TestClient, json_lines: Lines) -> None:
    json_lines()
    first, second = api.get("/api/conversations"), api.get("/api/conversations")
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert ids[0] != ids[1] and all(len(i) == 16 for i in ids)
    got = access(json_lines())
    assert [r["request_id"] for r in got] == ids
    assert got[0]["level"] == "INFO" and got[0]["msg"].startswith("GET /api/conversations 200 ")
    assert got[0]["ts"].endswith("+00:00")


def test_a_sane_incoming_request_id_is_kept_and_any_other_replaced(
    api: TestClient, json_lines: Lines
) -> None:
    assert (
        api.get("/healthz", headers={"X-Request-ID": "proxy-7f3a.b:1"}).headers["x-request-id"]
        == "proxy-7f3a.b:1"
    )
    for bad in ("x" * 65, "two words", "a\u00e9b", "x;rm -rf"):
        got = api.get("/healthz", headers={"X-Request-ID": bad.encode()}).headers["x-request-id"]
        assert got != bad and accept_request_id(got) == got
    assert accept_request_id(None) != accept_request_id(None)


def test_refusals_carry_the_id_too(tmp_path: Path, json_lines: Lines) -> None:
    settings = load_settings(None, data_dir=tmp_path, server={"api_token": "tok"}, memory={"enabled": False})
    with TestClient(create_app(build_services(settings, clock=FixedClock(), llm=FakeLLM()))) as api:
        json_lines()
        r = api.get("/api/conversations?token=tok-in-query")
        assert r.status_code == 401
        (line,) = access(json_lines())
        assert line["request_id"] == r.headers["x-request-id"]
        assert line["msg"].startswith("GET /api/conversations 401 ")
        assert "tok-in-query" not in line["msg"]  # the query (which may hold a token) is never logged


def test_the_models_log_lines_carry_the_id_of_the_request_that_asked(
    tmp_path: Path, json_lines: Lines
) -> None:
    def refuse(messages: object) -> str:
        raise BadRequest("the prompt is too long for this model")

    settings = load_settings(None, data_dir=tmp_path, memory={"enabled": False}, scheduler={"enabled": False})
    with TestClient(create_app(build_services(settings, clock=FixedClock(), llm=FakeLLM(refuse)))) as api:
        json_lines()
        r = api.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 400
        lines = json_lines()
    refused = [x for x in lines if x["logger"] == "assistant.llm.worker"]
    assert refused and refused[0]["msg"].startswith("generation refused")
    assert refused[0]["request_id"] == r.headers["x-request-id"]  # logged on the worker thread


def test_a_scheduled_runs_lines_carry_its_run_id(
    settings: Settings, tmp_path: Path, json_lines: Lines
) -> None:
    from assistant.skillkit.scheduler import SkillScheduler

    services = build_services(settings, clock=FixedClock(), llm=FakeLLM(), notifier=RecordingNotifier())
    assert services.skills is not None
    sched = SkillScheduler(services.skills, tmp_path / "schedules.sqlite3")
    try:
        s = sched.add("time", "hourly")
        json_lines()
        sched.run_now(s.id)
        sched.run_now(s.id)
        lines = [x for x in json_lines() if x["logger"] == "assistant.skillkit.scheduler"]
        runs = sorted(r.id for r in sched.runs(s.id))
    finally:
        sched.shutdown()
    started = [x for x in lines if "run started" in x["msg"]]
    assert [x["run_id"] for x in started] == [
        f"run-{i}" for i in runs
    ]  # the row in `assistant schedule list`
    assert all(x.get("run_id") and "request_id" not in x for x in lines)
    assert request_id.get() is None


def test_text_format_names_the_ids_and_escapes_control_characters(
    api: TestClient, text_lines: Callable[[], str]
) -> None:
    text_lines()
    r = api.get("/api/conversations/a%0Afake%20line")
    out = text_lines()
    line = next(x for x in out.splitlines() if "assistant.access" in x)
    assert f"request_id={r.headers['x-request-id']}" in line
    assert "a\\nfake line" in line  # one line: a newline in the path cannot forge another record
    with run_context("run-9"):
        logging.getLogger("assistant.test").warning("inside a run")
    assert "WARNING assistant.test: run_id=run-9 inside a run" in text_lines()
