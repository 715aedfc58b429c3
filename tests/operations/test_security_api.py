"""The LOW list of issue 25 at the API: WebSocket scopes pass the request guard (Host, token, Origin);
/healthz on a token-protected daemon says only "ok" without the token; POST /api/memories refuses a
path-like or NUL-bearing conversation_id; restore refuses a manifest that lists one path twice."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from assistant.api.guard import RequestGuard
from assistant.app import create_app
from assistant.cli.backup import FORMAT, VERSION, BackupError, restore_backup
from assistant.config import ServerSettings, load_settings
from assistant.services import build_services
from tests.fakes import FakeLLM, FixedClock
from tests.memory_fakes import HashingEmbedder

# -- WebSocket scopes ------------------------------------------------------------------------------------


async def _ws_echo(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "websocket"
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "hello"})
    await send({"type": "websocket.close", "code": 1000})


@pytest.fixture
def ws() -> TestClient:
    guard = RequestGuard(_ws_echo, ServerSettings(api_token="tok", allowed_hosts=["testserver"]))
    return TestClient(guard)  # type: ignore[arg-type]


def _accepted(client: TestClient, path: str, **headers: str) -> bool:
    try:
        with client.websocket_connect(path, headers=headers) as conn:
            return conn.receive_text() == "hello"
    except (WebSocketDisconnect, WebSocketDenialResponse):
        return False


def test_a_websocket_with_the_token_from_this_origin_is_accepted(ws: TestClient) -> None:
    assert _accepted(ws, "/ws", authorization="Bearer tok")
    assert _accepted(ws, "/ws?token=tok", origin="http://testserver")  # a browser cannot give headers


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/ws", {}),  # no token
        ("/ws?token=wrong", {}),
        ("/ws", {"authorization": "Bearer tok", "host": "evil.example"}),  # DNS rebinding
        ("/ws?token=tok", {"origin": "http://evil.example"}),  # cross-site WebSocket hijacking
        ("/ws?token=tok", {"origin": "null"}),
    ],
)
def test_a_websocket_failing_the_guard_is_refused(ws: TestClient, path: str, headers: dict[str, str]) -> None:
    assert not _accepted(ws, path, **headers)


# -- /healthz --------------------------------------------------------------------------------------------


@pytest.fixture
def protected(tmp_path: Path) -> Iterator[TestClient]:
    settings = load_settings(
        None, data_dir=tmp_path / "d", server={"allowed_hosts": ["testserver"], "api_token": "tok"},
        memory={"enabled": True}, scheduler={"enabled": False},
    )  # fmt: skip
    services = build_services(settings, clock=FixedClock(), llm=FakeLLM(), embedder=HashingEmbedder())
    with TestClient(create_app(services)) as client:
        yield client
    services.close()


def test_healthz_without_the_token_says_only_ok(protected: TestClient) -> None:
    assert protected.get("/healthz").json() == {"status": "ok"}
    full = protected.get("/healthz", headers={"Authorization": "Bearer tok"}).json()
    assert full["status"] == "ok" and "pid" in full and "busy" in full
    assert protected.get("/healthz", headers={"Authorization": "Bearer nope"}).json() == {"status": "ok"}


# -- conversation_id of a memory -------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["../../etc/passwd", "a/b", "a\\b", "x\x00y", "..", "tab\there", "new\nline"])
def test_a_memory_with_a_path_like_or_nul_conversation_id_is_refused(protected: TestClient, bad: str) -> None:
    auth = {"Authorization": "Bearer tok"}
    r = protected.post("/api/memories", json={"text": "a note", "conversation_id": bad}, headers=auth)
    assert r.status_code in (400, 422), r.text
    assert "conversation_id" in r.text
    r = protected.post(
        "/api/memories/batch", json={"memories": [{"text": "n", "conversation_id": bad}]}, headers=auth
    )
    assert r.status_code in (400, 404, 422), r.text
    good = protected.post(
        "/api/memories", json={"text": "a note", "conversation_id": "c-1_a.b"}, headers=auth
    )
    assert good.status_code in (200, 201), good.text


# -- restore ---------------------------------------------------------------------------------------------


def _archive(path: Path, files: dict[str, bytes], listed: list[str]) -> Path:
    def entry(p: str) -> dict[str, Any]:
        data = files[str(PurePosixPath(p))]
        return {"path": p, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    entries = [entry(p) for p in listed]
    manifest = {"format": FORMAT, "version": VERSION, "files": entries, "created_at": "2026-01-01T00:00:00Z"}
    with tarfile.open(path, "w:gz") as tar:
        for name, data in {"manifest.json": json.dumps(manifest).encode(), **files}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize(
    "twice", [["data/notes.txt", "data/notes.txt"], ["data/notes.txt", "data/./notes.txt"]]
)
def test_restore_refuses_a_manifest_listing_a_path_twice(tmp_path: Path, twice: list[str]) -> None:
    archive = _archive(tmp_path / "b.tar.gz", {"data/notes.txt": b"hello"}, twice)
    with pytest.raises(BackupError, match="twice"):
        restore_backup(archive, tmp_path / "fresh")
    assert not list(tmp_path.glob(".assistant-restore-*"))
