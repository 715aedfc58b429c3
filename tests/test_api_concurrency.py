"""One model, many clients: the bounded queue, 429 with Retry-After, disconnects free the worker."""

from __future__ import annotations

import concurrent.futures
import threading
from pathlib import Path

import httpx

from assistant.app import create_app
from assistant.config import load_settings
from assistant.services import build_services
from tests.fakes import FakeLLM, FixedClock
from tests.server import serve_app

MSG = {"messages": [{"role": "user", "content": "hi"}]}


def make_app(tmp_path: Path, llm: FakeLLM, queue_size: int = 1):  # type: ignore[no-untyped-def]
    settings = load_settings(
        None,
        data_dir=tmp_path,
        server={"queue_size": queue_size, "retry_after": 3},
        memory={"enabled": False},
        scheduler={"enabled": False},
    )
    return create_app(build_services(settings, clock=FixedClock(), llm=llm))


def test_full_queue_answers_429_with_retry_after(tmp_path: Path) -> None:
    gate = threading.Event()
    llm = FakeLLM("one two three", gate=gate)
    with serve_app(make_app(tmp_path, llm, queue_size=1)) as url, httpx.Client(base_url=url, timeout=30) as c:
        pool = concurrent.futures.ThreadPoolExecutor(4)
        running = pool.submit(c.post, "/v1/chat/completions", json=MSG)
        assert llm.started.wait(10)  # the worker is busy with the first request
        waiting = pool.submit(c.post, "/v1/chat/completions", json=MSG)
        # Wait until the second request sits in the queue.
        for _ in range(500):
            if c.get("/healthz").json()["waiting"] == 1:
                break
            threading.Event().wait(0.01)
        r = c.post("/v1/chat/completions", json=MSG)
        assert r.status_code == 429
        assert r.headers["retry-after"] == "3"
        assert r.json()["error"]["code"] == "queue_full"
        gate.set()
        assert running.result(30).status_code == 200
        assert waiting.result(30).status_code == 200
        pool.shutdown()


def test_client_disconnect_mid_stream_cancels_and_frees_the_worker(tmp_path: Path) -> None:
    gate = threading.Semaphore(0)
    llm = FakeLLM(" ".join(["word"] * 1000), gate=gate)
    with serve_app(make_app(tmp_path, llm, queue_size=2)) as url:
        with httpx.stream(
            "POST", url + "/v1/chat/completions", json={**MSG, "stream": True}, timeout=30
        ) as r:
            assert r.status_code == 200
            data = (line for line in r.iter_lines() if line.startswith("data:"))
            assert '"role"' in next(data)  # the opening chunk, before any token
            for _ in range(5):
                gate.release()  # one token through, read it; then hang up
                assert '"content"' in next(data)
        assert llm.cancelled.wait(10), "generation did not stop after the client went away"
        llm.reply = "done now"
        llm.gate = None
        r = httpx.post(url + "/v1/chat/completions", json=MSG, timeout=30)
        assert r.status_code == 200
        assert r.json()["choices"][0]["message"]["content"] == "done now"


def test_non_streaming_disconnect_cancels(tmp_path: Path) -> None:
    gate = threading.Event()
    llm = FakeLLM("a b c", gate=gate)
    with serve_app(make_app(tmp_path, llm, queue_size=2)) as url:
        try:
            httpx.post(url + "/v1/chat/completions", json=MSG, timeout=1.0)
        except httpx.ReadTimeout:
            pass  # we hung up while the model was still working
        assert llm.cancelled.wait(10)
        gate.set()
        assert httpx.post(url + "/v1/chat/completions", json=MSG, timeout=30).status_code == 200


def test_many_concurrent_clients_never_get_500(tmp_path: Path) -> None:
    llm = FakeLLM("a b c d e f g h")
    with serve_app(make_app(tmp_path, llm, queue_size=4)) as url, httpx.Client(base_url=url, timeout=60) as c:

        def one(i: int) -> int:
            body = {**MSG, "stream": i % 2 == 0, "conversation_id": f"c{i % 3}"}
            return c.post("/v1/chat/completions", json=body).status_code

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(one, range(64)))
    assert set(codes) <= {200, 429}
    assert codes.count(200) >= 4
