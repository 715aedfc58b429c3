"""The request guard, attacked as a hostile web page or a local client without the token would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from assistant.api.guard import allowed_host_names, host_name
from assistant.app import create_app
from assistant.config import ServerSettings, load_settings
from assistant.services import build_services
from tests.fakes import FakeLLM, FixedClock
from tests.server import serve_app

MSG = {"messages": [{"role": "user", "content": "hi"}]}


def make_client(tmp_path: Path, **server: Any) -> TestClient:
    settings = load_settings(
        None, data_dir=tmp_path, server={"allowed_hosts": ["testserver"], **server},
        memory={"enabled": False}, scheduler={"enabled": False},
    )  # fmt: skip
    return TestClient(create_app(build_services(settings, clock=FixedClock(), llm=FakeLLM())))


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    with make_client(tmp_path) as c:
        yield c


# -- Host: DNS rebinding ---------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "127.0.0.1.evil.example", "", "[::2]"])
def test_rebound_host_names_are_refused(api: TestClient, host: str) -> None:
    for method, path in [("GET", "/v1/models"), ("GET", "/api/conversations"), ("GET", "/"),
                         ("POST", "/api/skills/time/run")]:  # fmt: skip
        r = api.request(method, path, headers={"Host": host})
        assert r.status_code == 421, (method, path, host)
        assert r.json()["error"]["code"] == "host_not_allowed"


@pytest.mark.parametrize("host", ["127.0.0.1:8765", "localhost:8765", "[::1]:8765", "LOCALHOST"])
def test_loopback_host_names_are_answered(api: TestClient, host: str) -> None:
    assert api.get("/v1/models", headers={"Host": host}).status_code == 200


def test_allow_list_from_settings() -> None:
    assert host_name("[::1]:80") == "::1" and host_name("Pi.Local:8765") == "pi.local"
    names = allowed_host_names(ServerSettings(host="192.168.1.5", api_token="t", allowed_hosts=["pi.local"]))
    assert names is not None and {"192.168.1.5", "pi.local", "127.0.0.1", "localhost"} <= names
    assert "evil.example" not in names
    # a wildcard bind with a token and no list: the token keeps other sites out, any name is answered
    assert allowed_host_names(ServerSettings(host="0.0.0.0", api_token="t")) is None
    # without a token a wildcard bind still only answers to loopback names
    open_names = allowed_host_names(ServerSettings(host="0.0.0.0"))
    assert open_names is not None and "evil.example" not in open_names
    assert allowed_host_names(ServerSettings(allowed_hosts=["*"])) is None


# -- Origin and content type: cross-site requests ----------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://localhost:3000"},  # another local site is another origin
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "file://"},
    ],
)
def test_cross_site_state_changes_are_refused(api: TestClient, headers: dict[str, str]) -> None:
    for method, path, body in [
        ("POST", "/api/skills/time/run", None),  # body-less: no CORS preflight in a browser
        ("POST", "/api/feeds/refresh", None),
        ("POST", "/v1/chat/completions", MSG),
        ("DELETE", "/api/conversations/abc", None),
    ]:
        r = api.request(method, path, json=body, headers=headers)
        assert r.status_code == 403, (method, path, headers)
        assert r.json()["error"]["code"] == "cross_origin"


def test_same_origin_page_keeps_working(api: TestClient) -> None:
    same = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    assert api.post("/v1/chat/completions", json=MSG, headers=same).status_code == 200
    assert api.post("/api/skills/time/run", headers=same).status_code == 200
    assert api.get("/v1/models", headers={"Origin": "https://evil.example"}).status_code == 200  # read: no CORS


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", ""])  # fmt: skip
def test_json_endpoints_need_a_json_content_type(api: TestClient, content_type: str) -> None:
    import json

    headers = {"Content-Type": content_type} if content_type else {}
    r = api.post("/v1/chat/completions", content=json.dumps(MSG), headers=headers)
    assert r.status_code == 415
    assert r.json()["error"]["code"] == "unsupported_media_type"
    ok = api.post("/v1/chat/completions", content=json.dumps(MSG),
                  headers={"Content-Type": "application/json; charset=utf-8"})  # fmt: skip
    assert ok.status_code == 200


# -- size limits -----------------------------------------------------------------------------------------


def test_declared_oversized_body_is_refused_before_auth(tmp_path: Path) -> None:
    with make_client(tmp_path, api_token="tok", max_body_bytes=4096) as api:
        r = api.post("/v1/chat/completions", content=b"[" + b"1," * 5000 + b"1]",
                     headers={"Content-Type": "application/json"})  # fmt: skip
        assert r.status_code == 413  # no token was sent: the size is checked first
        assert "server.max_body_bytes" in r.json()["error"]["message"]


def test_streamed_oversized_body_is_cut_off_while_it_arrives() -> None:
    """A chunked body with no Content-Length: the guard stops pulling chunks once past the limit, so the
    daemon never holds more than the limit, and answers 413 without calling the app."""
    import asyncio

    from assistant.api.guard import RequestGuard

    called = False

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal called
        called = True

    pulled = 0

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"1," * 512 * 1024, "more_body": pulled < 500}  # 500 MB

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    guard = RequestGuard(app, ServerSettings(max_body_bytes=8 * 1024 * 1024))
    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "query_string": b"",
             "headers": [(b"host", b"127.0.0.1:8765"), (b"content-type", b"application/json"),
                         (b"transfer-encoding", b"chunked")]}  # fmt: skip
    asyncio.run(guard(scope, receive, send))
    assert not called
    assert sent[0]["status"] == 413
    assert pulled == 9  # 8 MiB of 1 MiB chunks, and the one that passed the limit


def test_streamed_oversized_body_over_real_http(tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=tmp_path, server={"max_body_bytes": 64 * 1024},
                             memory={"enabled": False}, scheduler={"enabled": False})  # fmt: skip

    def body() -> Iterator[bytes]:
        yield b"["
        for _ in range(200):
            yield b"1," * 1024
        yield b"1]"

    with serve_app(create_app(build_services(settings, clock=FixedClock(), llm=FakeLLM()))) as url:
        r = httpx.post(url + "/v1/chat/completions", content=body(),
                       headers={"Content-Type": "application/json"}, timeout=60)  # fmt: skip
        assert r.status_code == 413


def test_malformed_content_length(api: TestClient) -> None:
    r = api.post("/v1/chat/completions", json=MSG, headers={"Content-Length": "12abc"})
    assert r.status_code == 400


# -- token -----------------------------------------------------------------------------------------------


def test_auth_matrix_every_route_but_health_and_page_needs_the_token(tmp_path: Path) -> None:
    """Listed from the app's own schema, so a new route cannot be forgotten."""
    with make_client(tmp_path, api_token="tok") as api:
        paths = api.app.openapi()["paths"]  # type: ignore[attr-defined]
        checked = 0
        for template, operations in paths.items():
            path = template.replace("{name}", "time")
            for part in ("{conversation_id}", "{memory_id}", "{schedule_id}", "{feed_id}", "{notification_id}"):
                path = path.replace(part, "1")
            for method in operations:
                for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "tok"}):
                    r = api.request(method.upper(), path, headers=headers)
                    if template == "/healthz":
                        assert r.status_code == 200
                    else:
                        assert r.status_code == 401, (method, template, headers)
                        checked += 1
        assert checked >= 3 * 30  # every API operation, three ways
        for public in ("/", "/healthz"):
            assert api.get(public).status_code == 200
        assert api.get("/openapi.json").status_code == 401
        assert api.get("/openapi.json", headers={"Authorization": "Bearer tok"}).status_code == 200
        assert api.get("/docs", headers={"Authorization": "Bearer tok"}).status_code == 404  # no CDN Swagger


def test_data_dir_and_databases_are_private(tmp_path: Path) -> None:
    import os
    import stat

    data = tmp_path / "data"
    settings = load_settings(None, data_dir=data, memory={"enabled": False}, scheduler={"enabled": False})
    old = os.umask(0o022)  # a typical umask: without care, files come out world-readable
    try:
        services = build_services(settings, clock=FixedClock(), llm=FakeLLM())
        services.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    db = data / "conversations.sqlite3"
    assert db.exists() and stat.S_IMODE(db.stat().st_mode) & 0o077 == 0


def test_chat_request_caps(api: TestClient) -> None:
    many = {"messages": [{"role": "user", "content": "x"}] * 5_001}
    r = api.post("/v1/chat/completions", json=many)
    assert r.status_code == 400 and "messages" in r.json()["error"]["message"]
    big = {"messages": [{"role": "user", "content": "y" * 150_000}] * 14}  # 2.1 M characters in all
    r = api.post("/v1/chat/completions", json=big)
    assert r.status_code == 400 and "conversation_id" in r.json()["error"]["message"]
    r = api.post("/v1/chat/completions", json={**MSG, "stop": ["z" * 201]})
    assert r.status_code == 400 and "stop" in r.json()["error"]["message"]
    ok = {"messages": [{"role": "user" if i % 2 == 0 else "assistant", "content": "turn"} for i in range(3001)]}
    assert api.post("/v1/chat/completions", json=ok).status_code == 200  # a 3,000-turn history is answered
