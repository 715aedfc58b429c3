"""A chat turn whose conversation commit landed but whose memory copy did not is remembered at the next start.

The orchestrator commits the turns to conversations.sqlite3, then copies them into memory. A kill -9 between
the two (or a memory failure) used to leave the turn out of memory for good. Now each such turn is marked
pending in the same transaction that stores it and unmarked once memory has it; ``Services.start`` gives
memory the pending ones. Real stores in tmp (SQLite conversations, memory with a Chroma dir and the hashing
fake embedder); the "kill" is a memory hook that fails after the commit, which leaves the same state.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from assistant.app import create_app
from assistant.services import Services
from memory.keyword import Filters
from tests.fakes import FakeLLM, FixedClock
from tests.memory_fakes import memory_services


def _services(clock: FixedClock, tmp_path: Path, *, memory: bool = True) -> Services:
    """One start of the daemon on ``tmp_path``; chats are remembered when ``memory`` is on."""
    return memory_services(
        tmp_path / "data", clock, FakeLLM("The boiler code is 4471."), enabled=memory, recall_k=5,
        recall_token_budget=512, recall_min_similarity=0.0, remember_api_chats=True,
    )  # fmt: skip


def _chat(c: TestClient, text: str, conversation_id: str | None = None) -> str:
    body: dict[str, object] = {"messages": [{"role": "user", "content": text}]}
    if conversation_id:
        body["conversation_id"] = conversation_id
    r = c.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["conversation_id"])


def _remembered(services: Services, conversation_id: str) -> list[tuple[str, str]]:
    assert services.memory is not None
    records, _ = services.memory.list(Filters(conversation_id=conversation_id), 100, 0)
    return sorted((r.source, r.text) for r in records)


def _fail_memory_copy(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    def killed(*_: object, **__: object) -> None:
        raise RuntimeError("the daemon died here")

    assert services.chat.memory is not None
    monkeypatch.setattr(services.chat.memory, "remember_turns", killed)


def test_turn_committed_but_not_remembered_is_remembered_at_start(
    clock: FixedClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = _services(clock, tmp_path)
    with TestClient(create_app(services)) as c:
        _fail_memory_copy(services, monkeypatch)
        conversation = _chat(c, "What is the boiler code?")
        assert _remembered(services, conversation) == []  # committed, not in memory
    monkeypatch.undo()

    services = _services(clock, tmp_path)  # the next start
    with TestClient(create_app(services)):
        expected = [("assistant", "The boiler code is 4471."), ("user", "What is the boiler code?")]
        assert _remembered(services, conversation) == expected
        hits = services.memory.search("boiler code", k=5) if services.memory else []
        assert {h.record.text for h in hits} >= {"The boiler code is 4471.", "What is the boiler code?"}
        provenance = {h.record.source: h.as_dict()["provenance"] for h in hits}
        assert provenance == {"user": "user", "assistant": "conversation"}
    services = _services(clock, tmp_path)  # once remembered, never again
    with TestClient(create_app(services)):
        assert len(_remembered(services, conversation)) == 2


def test_a_remembered_turn_the_user_deleted_from_memory_does_not_come_back(
    clock: FixedClock, tmp_path: Path
) -> None:
    services = _services(clock, tmp_path)
    with TestClient(create_app(services)) as c:
        conversation = _chat(c, "Note that my locker is number 12.")
        assert services.memory is not None
        records, _ = services.memory.list(Filters(conversation_id=conversation), 10, 0)
        assert len(records) == 2
        for r in records:
            assert c.delete(f"/api/memories/{r.id}").status_code == 200
    services = _services(clock, tmp_path)
    with TestClient(create_app(services)):
        assert _remembered(services, conversation) == []


def test_memory_copy_that_landed_before_the_kill_is_not_stored_twice(
    clock: FixedClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after the memory add but before the turn was unmarked: the start finds the copy, adds none."""
    services = _services(clock, tmp_path)
    with TestClient(create_app(services)) as c:
        monkeypatch.setattr(services.conversations, "memory_done", lambda ids: None)
        conversation = _chat(c, "By the way, the spare key is under the blue pot.")  # "Remind me" sets a reminder
        assert len(_remembered(services, conversation)) == 2
    monkeypatch.undo()
    services = _services(clock, tmp_path)
    with TestClient(create_app(services)):
        assert len(_remembered(services, conversation)) == 2
        assert services.conversations.pending_memory() == []


def test_turns_made_while_memory_was_off_are_not_pending(
    clock: FixedClock, tmp_path: Path
) -> None:
    services = _services(clock, tmp_path, memory=False)
    with TestClient(create_app(services)) as c:
        conversation = _chat(c, "This chat happened with memory turned off.")
    services = _services(clock, tmp_path)
    with TestClient(create_app(services)):
        assert _remembered(services, conversation) == []


def test_turns_of_a_store_from_before_the_pending_mark_are_not_pending(tmp_path: Path) -> None:
    """An older conversations.sqlite3 gets the column with every turn settled: nothing is remembered twice."""
    import sqlite3

    from assistant.chat.conversations import ConversationStore

    path = tmp_path / "conversations.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE conversations (id TEXT PRIMARY KEY, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
        "CREATE TABLE turns (id INTEGER PRIMARY KEY AUTOINCREMENT, conversation_id TEXT NOT NULL, role TEXT NOT NULL,"
        " content TEXT NOT NULL, created_at TEXT NOT NULL);"
        "INSERT INTO conversations VALUES ('c1', 'x', 'x');"
        "INSERT INTO turns(conversation_id, role, content, created_at) VALUES ('c1', 'user', 'hi', 'x');"
    )
    db.commit()
    db.close()
    store = ConversationStore(path)
    try:
        assert store.pending_memory() == []
        ids = store.append("c1", [("user", "more"), ("assistant", "sure")], FixedClock().now(), remember=True)
        assert [(c, t.id) for c, t in store.pending_memory()] == [("c1", i) for i in ids]
        store.memory_done(ids)
        assert store.pending_memory() == []
    finally:
        store.close()
