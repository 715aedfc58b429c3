"""/api/memories and chat recall through the HTTP app (TestClient), with the hashing fake embedder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from assistant.app import create_app
from assistant.services import Services
from tests.fakes import FakeLLM, FixedClock
from tests.memory_fakes import memory_services


@pytest.fixture
def mem_services(clock: FixedClock, fake_llm: FakeLLM, tmp_path: Path) -> Services:
    return memory_services(
        tmp_path / "data", clock, fake_llm, max_chars=1000, recall_k=5, recall_token_budget=512,
        recall_min_similarity=0.0, remember_api_chats=True,
    )  # fmt: skip


@pytest.fixture
def mc(mem_services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(mem_services)) as c:
        yield c


def test_add_get_list_search_delete(mc: TestClient) -> None:
    r = mc.post("/api/memories", json={"text": "The boiler was serviced in March", "metadata": {"room": "attic"}})
    assert r.status_code == 201, r.text
    mem = r.json()
    assert mem["source"] == "note" and mem["metadata"] == {"room": "attic"} and mem["created_at"].endswith("Z")
    mc.post("/api/memories", json={"text": "Buy oat milk", "source": "user", "conversation_id": "c1"})
    assert mc.get(f"/api/memories/{mem['id']}").json()["text"] == "The boiler was serviced in March"

    page = mc.get("/api/memories", params={"limit": 1}).json()
    assert page["total"] == 2 and len(page["data"]) == 1
    assert mc.get("/api/memories", params={"source": "user"}).json()["total"] == 1

    hits = mc.get("/api/memories/search", params={"q": "when was the boiler serviced", "k": 1}).json()["data"]
    assert hits[0]["id"] == mem["id"]
    assert set(hits[0]["retrievers"]) == {"dense", "keyword"}
    assert {"score", "created_at", "source", "text"} <= set(hits[0])
    where = mc.get("/api/memories/search", params={"q": "boiler", "where": "room=cellar"}).json()["data"]
    assert where == []

    assert mc.delete(f"/api/memories/{mem['id']}").json() == {"id": mem["id"], "deleted": True}
    r = mc.delete(f"/api/memories/{mem['id']}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    for mode in ("hybrid", "dense", "keyword"):
        got = mc.get("/api/memories/search", params={"q": "boiler serviced March", "mode": mode}).json()["data"]
        assert mem["id"] not in [h["id"] for h in got]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"text": ""}, 400, "empty"),
        ({"text": "   "}, 400, "empty"),
        ({"text": "x" * 1001}, 413, "limit is 1000"),
        ({"text": "PK\x03\x04\x00\x00binary"}, 400, "binary"),
        ({"text": "hi", "source": "system"}, 400, "source"),
        ({"text": "hi", "metadata": {"a": {"b": 1}}}, 400, "metadata"),
        ({"txt": "hi"}, 400, "text"),
    ],
)
def test_bad_input_gets_a_4xx_that_says_why(mc: TestClient, body: dict, status: int, needle: str) -> None:
    r = mc.post("/api/memories", json=body)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]["message"]
    assert mc.get("/api/memories").json()["total"] == 0


def test_batch_is_all_or_nothing(mc: TestClient) -> None:
    r = mc.post("/api/memories/batch", json={"memories": [{"text": "fine"}, {"text": ""}]})
    assert r.status_code == 400
    assert mc.get("/api/memories").json()["total"] == 0
    r = mc.post("/api/memories/batch", json={"memories": [{"text": f"note {i}"} for i in range(3)]})
    assert r.status_code == 201 and len(r.json()["ids"]) == 3
    r = mc.post("/api/memories/batch", json={"memories": [{"text": "n"}] * 513})
    assert r.status_code == 400


def test_search_parameter_errors(mc: TestClient) -> None:
    assert mc.get("/api/memories/search", params={"q": ""}).status_code == 400
    assert mc.get("/api/memories/search", params={"q": "x", "k": 0}).status_code == 400
    r = mc.get("/api/memories/search", params={"q": "x", "since": "2026-01-01T00:00:00"})
    assert r.status_code == 400 and "timezone" in r.json()["error"]["message"]
    assert mc.get("/api/memories/search", params={"q": "x", "where": "novalue"}).status_code == 400
    assert mc.get("/api/memories/nope").status_code == 404


def test_a_fact_told_in_one_conversation_is_recalled_in_another(mc: TestClient, fake_llm: FakeLLM) -> None:
    # Told in passing: "Remember that ..." would be the rules layer's note, not a conversation turn.
    r = mc.post("/v1/chat/completions", json={"messages": [
        {"role": "user", "content": "By the way, my sister Alice lives in Lisbon."}]})
    assert r.status_code == 200, r.text
    first = r.json()["conversation_id"]
    turns = mc.get("/api/memories", params={"conversation_id": first}).json()
    assert {m["source"] for m in turns["data"]} == {"user", "assistant"}

    r = mc.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "Where does Alice live?"}]})
    body = r.json()
    assert body["conversation_id"] != first
    system, newest = fake_llm.prompts[-1][0], fake_llm.prompts[-1][-1]
    assert system.role == "system" and "Lisbon" not in system.content  # recall is not in the system message
    assert newest.role == "user" and newest.content.startswith("## Memories")  # but before the user's words
    assert "your sister Alice lives in Lisbon" in newest.content  # the user's words read back to the user
    assert newest.content.endswith("\n\n---\n\nWhere does Alice live?")
    recalled = body["recalled"]
    assert any("Lisbon" in item["text"] for item in recalled)
    assert all(item["conversation_id"] == first for item in recalled)


def test_turns_in_the_prompt_are_not_recalled_again(mc: TestClient, fake_llm: FakeLLM) -> None:
    r = mc.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "My cat is called Tom."}]})
    conv = r.json()["conversation_id"]
    r = mc.post("/v1/chat/completions", json={"conversation_id": conv, "messages": [
        {"role": "user", "content": "What is my cat called?"}]})
    assert r.json()["recalled"] == []
    assert "## Memories" not in fake_llm.prompts[-1][0].content
    assert fake_llm.prompts[-1][-1].content == "What is my cat called?"
