"""One model, many clients: the bounded queue, 429 with Retry-After, disconnects free the worker.

Memory is on, as in the daemon: every chat embeds its question for recall and stores its turns. The fast
tests use the hashing embedder; ``test_concurrent_chats_and_memory_writes_with_the_real_embedder`` (slow)
uses the bundled MiniLM, whose tokenizer is shared by every thread (memory/embedder.py's lock)."""

from __future__ import annotations

import concurrent.futures
import threading
from pathlib import Path

import httpx
import pytest

from assistant.app import create_app
from assistant.config import load_settings
from assistant.services import build_services
from tests.fakes import FakeLLM, FixedClock
from tests.memory_fakes import HashingEmbedder
from tests.server import serve_app

MSG = {"messages": [{"role": "user", "content": "hi"}]}


def make_app(tmp_path: Path, llm: FakeLLM, queue_size: int = 1, *, real_embedder: bool = False, stream_interval_ms: int = 25):  # type: ignore[no-untyped-def]
    """The daemon's app with memory on: the real memory part (bundled embedder) or the same service on the
    hashing embedder."""
    settings = load_settings(
        None,
        data_dir=tmp_path,
        server={"queue_size": queue_size, "retry_after": 3, "stream_interval_ms": stream_interval_ms},
        memory={"enabled": True, "recall_min_similarity": 0.0, "remember_api_chats": True},
        scheduler={"enabled": False},
    )
    embedder = None if real_embedder else HashingEmbedder()
    services = build_services(settings, clock=FixedClock(), llm=llm, embedder=embedder)
    assert services.memory is not None and services.chat.memory is not None
    return create_app(services)


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
    # a chunk per token: this client reads each token before the model may make the next (with a steady
    # backend the daemon's default holds a token that comes within 25 ms of the last chunk)
    with serve_app(make_app(tmp_path, llm, queue_size=2, stream_interval_ms=0)) as url:
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
        stored = c.get("/api/memories", params={"limit": 1}).json()["total"]
    assert set(codes) <= {200, 429}
    assert codes.count(200) >= 4
    assert stored == 2 * codes.count(200)  # each answered chat stored its two turns in memory


LONG_NOTE = " ".join(
    f"Note {i}: the allotment by the railway needs its beans staked, its shed painted and its gate oiled."
    for i in range(40)
)  # about 800 wordpieces: chunked, so the tokenizer counts tokens while other threads embed


@pytest.mark.slow
def test_concurrent_chats_and_memory_writes_with_the_real_embedder(tmp_path: Path) -> None:
    """Chats (each embeds its question and its turns), long notes (chunked with the tokenizer) and searches,
    all at once against one real embedder: no 500 (a shared tokenizer used without the lock fails with
    "Already borrowed" or embeds an untruncated text), and every write is found afterwards."""
    llm = FakeLLM("the beans are staked")
    with serve_app(make_app(tmp_path, llm, queue_size=64, real_embedder=True)) as url, httpx.Client(
        base_url=url, timeout=120
    ) as c:

        def one(i: int) -> tuple[str, int]:
            kind = i % 3
            if kind == 0:
                body = {"messages": [{"role": "user", "content": f"What about the allotment, question {i}?"}]}
                return "chat", c.post("/v1/chat/completions", json={**body, "stream": i % 2 == 0}).status_code
            if kind == 1:
                return "note", c.post("/api/memories", json={"text": f"{LONG_NOTE} ({i})"}).status_code
            return "search", c.get("/api/memories/search", params={"q": f"railway shed gate {i}"}).status_code

        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            results = list(pool.map(one, range(48)))
        assert [r for r in results if r[1] not in (200, 201)] == []
        total = c.get("/api/memories", params={"limit": 1}).json()["total"]
        assert total == 16 + 2 * 16  # 16 notes, 16 chats of two turns
        hits = c.get("/api/memories/search", params={"q": "allotment beans staked", "k": 3}).json()["data"]
        assert hits and all(h["retrievers"] for h in hits)
