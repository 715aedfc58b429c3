"""model.backend = "openai": generation on a real llama.cpp server (llama_cpp.server) on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from assistant.app import create_app
from assistant.config import load_settings
from assistant.core.errors import BackendError
from assistant.llm.model_file import bundled_model_path
from assistant.llm.remote import RemoteBackend
from assistant.llm.types import ChatMessage, GenerationParams, collect
from assistant.services import build_services
from tests.daemon import free_port
from tests.fakes import FixedClock

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model = bundled_model_path(tmp_path_factory.mktemp("models"), "smollm2")
    port = free_port()
    log = tmp_path_factory.mktemp("log") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(model),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "1024",
                "--chat_format",
                "chatml",
                "--model_alias",
                "smollm2-remote",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(log.read_text())
            try:
                if httpx.get(url + "/v1/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("llama_cpp.server did not start:\n" + log.read_text())
            time.sleep(0.2)  # polling a starting process
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def test_remote_backend_streams_from_llama_server(llama_server: str) -> None:
    backend = RemoteBackend(llama_server, None, None, 60)
    assert backend.name == "smollm2-remote"  # discovered from /v1/models
    out = collect(
        backend.stream_chat(
            [ChatMessage("user", "Say hello.")],
            GenerationParams(max_tokens=12, temperature=0),
            threading.Event(),
        )
    )
    assert out.text
    assert out.usage.completion_tokens > 0
    backend.close()


def test_daemon_with_remote_backend(llama_server: str, tmp_path: Path) -> None:
    settings = load_settings(
        None,
        data_dir=tmp_path,
        model={"backend": "openai", "base_url": llama_server + "/v1"},
        memory={"enabled": False},
        scheduler={"enabled": False},
    )
    with TestClient(create_app(build_services(settings, clock=FixedClock()))) as c:
        r = c.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}
        )
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"]
        assert c.get("/v1/models").json()["data"][0]["id"] == "smollm2-remote"


def test_unreachable_remote_server_is_a_clear_502(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        data_dir=tmp_path,
        model={"backend": "openai", "base_url": f"http://127.0.0.1:{free_port()}", "remote_model": "m"},
        memory={"enabled": False},
        scheduler={"enabled": False},
    )
    with TestClient(create_app(build_services(settings, clock=FixedClock()))) as c:
        r = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "Hi"}]})
        assert r.status_code == 502
        assert "cannot reach the model server" in r.json()["error"]["message"]
    with pytest.raises(BackendError):
        collect(
            RemoteBackend(f"http://127.0.0.1:{free_port()}", "m", None, 5).stream_chat(
                [ChatMessage("user", "x")], GenerationParams(), threading.Event()
            )
        )
