"""kill -9 at random moments: no acknowledged write is lost, no acknowledged delete comes back.

The real daemon (`assistant serve` in a subprocess: FTS5 + a Chroma dir + the ONNX embedder for memory, the
SQLAlchemy job store for schedules; the model backend is a fake OpenAI-compatible server on loopback, so no
model loads) takes a seeded random mix of memory adds and deletes, schedule creates and deletes, and a few
chats (each in a conversation the client names) from a few client threads at once. After a seeded random number of operations the daemon is SIGKILLed while requests are in flight,
then started again on the same data dir, and checked against everything acknowledged so far:

* every acknowledged memory add and schedule create is there (in the record list, and a sample of the
  memories found by dense search of their own text, so Chroma has them too);
* no acknowledged delete came back (in the list, or a sample in dense search);
* every chat turn the conversation store committed (acknowledged, or in flight at a kill and found there
  after it) is in memory too: a kill between the commit and the memory copy is made good at start;
* an operation in flight at the kill is *unknown*: either outcome is allowed, and what the restart shows
  is taken as its outcome from then on (an add is found by its unique text).

The totals are printed (`-s` shows them) and lost == resurrected == 0 is asserted.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from tests.daemon import Daemon, start_daemon
from tests.server import serve_app

pytestmark = pytest.mark.slow

SEED = 20261201
MIN_WRITES = 1000  # memory adds/deletes and schedule creates/deletes; chats come on top
MAX_ROUNDS = 40
CLIENTS = 3
DENSE_SAMPLE = 6  # per restart, of the acknowledged memories and of the deleted ones


@dataclass
class Ledger:
    """What the client was told, and what it does not know."""

    memories: dict[str, str] = field(default_factory=dict)  # acknowledged present: id -> text
    deleted_memories: dict[str, str] = field(default_factory=dict)  # acknowledged deletes: id -> text
    schedules: set[str] = field(default_factory=set)
    deleted_schedules: set[str] = field(default_factory=set)
    unknown_adds: dict[str, str] = field(default_factory=dict)  # text -> "" (id never seen)
    unknown_deletes: dict[str, str] = field(default_factory=dict)  # memory id -> text
    unknown_schedule_creates: int = 0
    chats: dict[str, str] = field(default_factory=dict)  # acknowledged: conversation id -> the user's text
    unknown_chats: dict[str, str] = field(default_factory=dict)
    unknown_schedule_deletes: set[str] = field(default_factory=set)
    acknowledged: int = 0
    unknown: int = 0
    lost: list[str] = field(default_factory=list)
    resurrected: list[str] = field(default_factory=list)
    operations: int = 0
    writes: int = 0  # of them, memory adds/deletes and schedule creates/deletes (not chats)
    errors: list[str] = field(default_factory=list)  # answers that were neither success nor a dropped connection
    lock: threading.Lock = field(default_factory=threading.Lock)


def _config(model_url: str) -> str:
    return (
        "[model]\n"
        'backend = "openai"\n'
        f'base_url = "{model_url}/v1"\n'
        'remote_model = "fake"\n'
        "[feeds]\nenabled = false\n"
    )


def fake_model() -> FastAPI:
    """An OpenAI-compatible chat server on loopback answering every chat with one short streamed line."""
    app = FastAPI()

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"data": [{"id": "fake"}]}

    @app.post("/v1/chat/completions")
    async def complete(request: Request) -> StreamingResponse:
        last = (await request.json())["messages"][-1]["content"].split()[-1]
        chunks = [
            {"choices": [{"delta": {"content": f"Noted, {last}."}, "finish_reason": None}]},
            {"choices": [{"delta": {}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 9, "completion_tokens": 3}},
        ]

        async def stream() -> AsyncIterator[str]:
            for chunk in chunks:
                yield f"data: {json.dumps(chunk)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    return app


class Client:
    """One client thread's operations; each is recorded as acknowledged or unknown."""

    def __init__(self, url: str, ledger: Ledger, rng: random.Random, budget: Callable[[], bool]) -> None:
        self.http = httpx.Client(base_url=url, timeout=60)
        self.ledger = ledger
        self.rng = rng
        self.budget = budget  # False once the round's operations are used up (the kill is coming)

    def run(self) -> None:
        try:
            while self.budget():
                self.step()
        except httpx.TransportError:
            pass  # the daemon was killed under this request; step() recorded it as unknown
        except Exception as exc:  # noqa: BLE001 - reported by the test, not lost in a thread
            with self.ledger.lock:
                self.ledger.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            self.http.close()

    def step(self) -> None:
        roll = self.rng.random()
        led = self.ledger
        if roll < 0.06:
            with led.lock:
                n = led.operations
            conversation = f"kill-{n}-{self.rng.randrange(10**9)}"
            text = f"chat {n}: my parcel tracking word is zc{n}y"
            body = {"messages": [{"role": "user", "content": text}], "conversation_id": conversation,
                    "memory": True}  # as the daemon's own clients send it: the turn has a memory copy
            self._call(lambda: self.http.post("/v1/chat/completions", json=body), "chat", conversation, text)
        elif roll < 0.55:
            with led.lock:
                n = led.operations
            text = f"durable note {n} r{self.rng.randrange(10**9)}: the code for locker zq{n}x is {self.rng.randrange(10**6)}"
            self._call(lambda: self.http.post("/api/memories", json={"text": text}), "add", text)
        elif roll < 0.8:
            with led.lock:
                if not led.memories:
                    return
                memory_id = self.rng.choice(sorted(led.memories))
                text = led.memories.pop(memory_id)  # no other thread deletes it meanwhile
            self._call(lambda: self.http.delete(f"/api/memories/{memory_id}"), "delete", memory_id, text)
        elif roll < 0.92:
            hour = self.rng.randrange(24)
            body = {"skill": "time", "schedule": f"every day at {hour}:{self.rng.randrange(60):02d}"}
            self._call(lambda: self.http.post("/api/schedules", json=body), "schedule")
        else:
            with led.lock:
                if not led.schedules:
                    return
                schedule_id = self.rng.choice(sorted(led.schedules))
                led.schedules.discard(schedule_id)
            self._call(lambda: self.http.delete(f"/api/schedules/{schedule_id}"), "unschedule", schedule_id)

    def _call(self, send: Callable[[], httpx.Response], kind: str, key: str = "", text: str = "") -> None:
        led = self.ledger
        with led.lock:
            led.operations += 1
            led.writes += kind != "chat"
        try:
            r = send()
        except httpx.TransportError:
            with led.lock:
                led.unknown += 1
                if kind == "add":
                    led.unknown_adds[key] = ""
                elif kind == "chat":
                    led.unknown_chats[key] = text
                elif kind == "delete":
                    led.unknown_deletes[key] = text
                elif kind == "schedule":
                    led.unknown_schedule_creates += 1
                else:
                    led.unknown_schedule_deletes.add(key)
            raise
        assert r.status_code in (200, 201), f"{kind}: {r.status_code} {r.text}"
        with led.lock:
            led.acknowledged += 1
            if kind == "add":
                led.memories[r.json()["id"]] = key
            elif kind == "chat":
                led.chats[key] = text
            elif kind == "delete":
                led.deleted_memories[key] = text
            elif kind == "schedule":
                led.schedules.add(r.json()["id"])
            else:
                led.deleted_schedules.add(key)


def _all_memories(d: Daemon) -> dict[str, str]:
    out: dict[str, str] = {}
    with httpx.Client(base_url=d.url, timeout=60) as c:
        offset = 0
        while True:
            page = c.get("/api/memories", params={"limit": 500, "offset": offset}).json()
            out.update({m["id"]: m["text"] for m in page["data"]})
            offset += len(page["data"])
            if not page["data"] or offset >= page["total"]:
                return out


def _committed_turn(d: Daemon, conversation: str, text: str) -> bool:
    r = httpx.get(f"{d.url}/api/conversations/{conversation}", timeout=60)
    if r.status_code == 404:
        return False
    r.raise_for_status()
    return any(m["role"] == "user" and m["content"] == text for m in r.json()["messages"])


def _remembered_texts(d: Daemon, conversation: str) -> set[str]:
    r = httpx.get(d.url + "/api/memories", params={"conversation_id": conversation, "limit": 50}, timeout=60)
    r.raise_for_status()
    return {m["text"] for m in r.json()["data"]}


def _dense_top(d: Daemon, text: str) -> list[str]:
    r = httpx.get(d.url + "/api/memories/search",
                  params={"q": text, "k": 3, "mode": "dense", "recency": "false"}, timeout=60)  # fmt: skip
    r.raise_for_status()
    return [h["id"] for h in r.json()["data"]]


def _check(d: Daemon, led: Ledger, rng: random.Random) -> None:
    """After a restart: compare the daemon with the ledger, then settle the unknowns by what it shows."""
    stored = _all_memories(d)
    schedules = {s["id"] for s in httpx.get(d.url + "/api/schedules", timeout=60).json()["data"]}
    by_text = {text: memory_id for memory_id, text in stored.items()}
    led.lost += [f"memory {i}" for i in led.memories if i not in stored]
    led.resurrected += [f"memory {i}" for i in led.deleted_memories if i in stored]
    led.lost += [f"schedule {i}" for i in led.schedules if i not in schedules]
    led.resurrected += [f"schedule {i}" for i in led.deleted_schedules if i in schedules]
    for memory_id in rng.sample(sorted(led.memories), min(DENSE_SAMPLE, len(led.memories))):
        if memory_id not in _dense_top(d, led.memories[memory_id]):
            led.lost.append(f"memory {memory_id} (its vector)")
    for memory_id in rng.sample(sorted(led.deleted_memories), min(DENSE_SAMPLE, len(led.deleted_memories))):
        if memory_id in _dense_top(d, led.deleted_memories[memory_id]):
            led.resurrected.append(f"memory {memory_id} (its vector)")

    for conversation, text in list(led.unknown_chats.items()):  # committed or not: settled by the daemon
        if _committed_turn(d, conversation, text):
            led.chats[conversation] = text
    led.unknown_chats.clear()
    for conversation, text in led.chats.items():  # a committed turn is in memory, even if killed before the copy
        if not _committed_turn(d, conversation, text):
            led.lost.append(f"chat turn {conversation}")
        elif text not in _remembered_texts(d, conversation):
            led.lost.append(f"chat turn {conversation} (its memory copy)")

    for text in led.unknown_adds:  # landed or not: from now on it is what the daemon shows
        if text in by_text:
            led.memories[by_text[text]] = text
    led.unknown_adds.clear()
    for memory_id, text in led.unknown_deletes.items():
        if memory_id in stored:
            led.memories[memory_id] = text
        else:
            led.deleted_memories[memory_id] = text
    led.unknown_deletes.clear()
    known = led.schedules | led.deleted_schedules | led.unknown_schedule_deletes
    led.schedules |= schedules - known  # creates in flight that landed
    for schedule_id in led.unknown_schedule_deletes:
        (led.schedules if schedule_id in schedules else led.deleted_schedules).add(schedule_id)
    led.unknown_schedule_deletes.clear()
    led.unknown_schedule_creates = 0


def test_kill_9_at_random_moments_loses_and_resurrects_nothing(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    led = Ledger()
    data = tmp_path / "data"
    with serve_app(fake_model()) as model_url:
        _run(data, _config(model_url), rng, led)


def _run(data: Path, config: str, rng: random.Random, led: Ledger) -> None:
    rounds = 0
    started = time.monotonic()
    starting = 0.0  # seconds spent starting daemons (the rest is operations and checks)
    while led.writes < MIN_WRITES and rounds < MAX_ROUNDS:
        rounds += 1
        t0 = time.monotonic()
        with start_daemon(data, config_toml=config) as d:
            starting += time.monotonic() - t0
            if rounds > 1:
                _check(d, led, rng)
            kill_at = led.operations + rng.randrange(40, 220)

            def budget(kill_at: int = kill_at) -> bool:
                with led.lock:
                    return led.operations < kill_at

            clients = [Client(d.url, led, random.Random(rng.random()), budget) for _ in range(CLIENTS)]
            threads = [threading.Thread(target=c.run) for c in clients]
            for t in threads:
                t.start()
            killer = threading.Thread(target=_kill_when, args=(led, kill_at, d, threads))
            killer.start()
            for t in threads:
                t.join(timeout=300)
            killer.join(timeout=300)
            assert led.errors == [], led.errors
            assert "Traceback" not in d.log(), d.log()[-3000:]
    with start_daemon(data, config_toml=config) as d:
        _check(d, led, rng)
        log = d.log()
    print(
        f"\nkill -9 durability: {rounds} kills, {led.operations} operations ({led.writes} memory and schedule "
        f"writes, the rest chats); acknowledged {led.acknowledged}, "
        f"unknown {led.unknown}, lost {len(led.lost)}, resurrected {len(led.resurrected)}; "
        f"{len(led.memories)} memories, {len(led.schedules)} schedules and {len(led.chats)} chats at the end; "
        f"{time.monotonic() - started:.0f} s, {starting:.0f} s of it starting the daemon"
    )
    assert led.errors == []
    assert led.writes >= MIN_WRITES
    assert led.lost == [] and led.resurrected == []
    assert "Traceback" not in log


def _kill_when(led: Ledger, kill_at: int, d: Daemon, clients: list[threading.Thread]) -> None:
    """SIGKILL the daemon as the operation count reaches ``kill_at``: requests of the other clients are in
    flight then (or once every client has stopped on an error, which the test reports). Waits on the
    clients' progress, not on time."""
    tick = threading.Event()
    while any(t.is_alive() for t in clients):
        with led.lock:
            if led.operations >= kill_at:
                break
        tick.wait(0.005)  # polling the clients' counter
    d.kill9()
