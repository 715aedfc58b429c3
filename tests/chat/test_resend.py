"""Standard OpenAI clients resend every earlier turn with each request and no conversation id: the daemon
recognises a history it already stores and stores only the new turn (storage stays linear)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from assistant.chat.conversations import chain_hash
from assistant.services import Services


def test_chain_hash_extends_one_turn_at_a_time() -> None:
    turns = [("user", "hi"), ("assistant", "hello"), ("user", "how are you?")]
    assert chain_hash(turns) == chain_hash(turns[2:], chain_hash(turns[:2]))
    assert chain_hash(turns) != chain_hash([("user", "hi"), ("assistant", "hello"), ("user", "how are you")])
    assert chain_hash([("user", "a\x00b")]) != chain_hash([("user", "a"), ("b", "")])  # no ambiguity


def test_resent_history_continues_the_stored_conversation(client: TestClient, services: Services) -> None:
    history: list[dict[str, str]] = []
    ids = []
    for question in ("My cat is called Miso.", "What is she called?", "And how old is she?"):
        history.append({"role": "user", "content": question})
        r = client.post("/v1/chat/completions", json={"messages": [{"role": "system", "content": "Be brief."}, *history]})
        assert r.status_code == 200
        ids.append(r.json()["conversation_id"])
        history.append({"role": "assistant", "content": r.json()["choices"][0]["message"]["content"]})
    assert ids[0] == ids[1] == ids[2]
    turns = services.conversations.turns(ids[0])
    assert [t.role for t in turns] == ["user", "assistant"] * 3  # each turn stored once, not 1 + 2 + 3 times
    assert [t.content for t in turns if t.role == "user"] == [m["content"] for m in history if m["role"] == "user"]
    assert len(services.conversations.list()) == 1


def test_a_changed_history_starts_a_new_conversation(client: TestClient, services: Services) -> None:
    first = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]}).json()
    answer = first["choices"][0]["message"]["content"]
    edited = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": answer + " (edited)"},
              {"role": "user", "content": "again"}]  # fmt: skip
    second = client.post("/v1/chat/completions", json={"messages": edited}).json()
    assert second["conversation_id"] != first["conversation_id"]
    same = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": answer}, {"role": "user", "content": "again"}]
    third = client.post("/v1/chat/completions", json={"messages": same}).json()
    assert third["conversation_id"] == first["conversation_id"]
