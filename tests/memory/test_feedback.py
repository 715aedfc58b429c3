"""Thumbs up and down on answers: the bounded score adjustment (memory/feedback.py) and /api/feedback.

Unit tests give the store hand-made vectors; the API tests run a real MemoryService (Chroma dir, hashing
embedder) behind the chat API with a FakeLLM.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from assistant.app import create_app
from assistant.config import Settings, load_settings
from assistant.services import Services, build_services
from memory.feedback import FeedbackConfig, FeedbackStore
from memory.hybrid import Fused
from tests.fakes import FakeLLM, FixedClock
from tests.memory_fakes import HashingEmbedder

VECTORS = {
    "what is the dentist's phone number": [1.0, 0.0, 0.0],
    "dentist phone number please": [0.95, 0.31, 0.0],  # a paraphrase: cosine 0.95
    "what did I plant in the garden": [0.0, 0.0, 1.0],  # unrelated: cosine 0
}


@pytest.fixture
def store(tmp_path: Path, clock: FixedClock) -> Iterator[FeedbackStore]:
    s = FeedbackStore(tmp_path / "feedback.sqlite3", lambda q: VECTORS[q], clock)
    yield s
    s.close()


def ranking() -> list[Fused]:
    """Four candidates, a spread of 3.0 among them."""
    return [Fused("vet", 3.0), Fused("dentist", 2.8), Fused("gp", 1.0), Fused("garden", 0.0)]


def order(fused: list[Fused]) -> list[str]:
    return [f.id for f in fused]


def rate(store: FeedbackStore, question: str, ids: list[str], good: bool, turn: int = 1) -> None:
    store.record(question=question, memory_ids=ids, good=good, conversation_id="c1", turn_id=turn)


def test_a_bad_answer_demotes_its_memories_for_similar_questions_only(store: FeedbackStore) -> None:
    assert order(store.adjust(ranking(), lambda: pytest.fail("embedded with nothing rated"))) == [
        "vet",
        "dentist",
        "gp",
        "garden",
    ]  # no ratings: untouched, and the query is not even embedded
    rate(store, "what is the dentist's phone number", ["vet", "gp"], good=False)
    after = store.adjust(ranking(), lambda: VECTORS["dentist phone number please"])
    assert order(after) == ["dentist", "vet", "gp", "garden"]
    shifts = {f.id: f.retrievers.get("feedback", {}).get("shift", 0.0) for f in after}
    assert shifts["vet"] < shifts["gp"] < 0 == shifts["dentist"]  # rank 1 of the answer moves most
    unrelated = store.adjust(ranking(), lambda: VECTORS["what did I plant in the garden"])
    assert order(unrelated) == order(ranking()) and all("feedback" not in f.retrievers for f in unrelated)


def test_the_effect_is_bounded_and_one_click_is_not_the_most(store: FeedbackStore) -> None:
    cfg = store.config
    q = VECTORS["what is the dentist's phone number"]
    rate(store, "what is the dentist's phone number", ["vet"], good=False, turn=1)
    one = next(f for f in store.adjust(ranking(), lambda: q) if f.id == "vet").score
    assert one == pytest.approx(3.0 - cfg.bound * 3.0 * math.tanh(cfg.step))
    for turn in range(2, 40):
        rate(store, "what is the dentist's phone number", ["vet"], good=False, turn=turn)
    many = next(f for f in store.adjust(ranking(), lambda: q) if f.id == "vet").score
    assert 3.0 - cfg.bound * 3.0 <= many < one  # more clicks move it further, never past the bound
    far_ahead = [Fused("vet", 10.0), Fused("dentist", 2.5), Fused("garden", 0.0)]
    assert order(store.adjust(far_ahead, lambda: q))[0] == "vet"  # a clear best match is not buried


def test_good_promotes_rerating_replaces_and_undo_forgets(store: FeedbackStore) -> None:
    q = VECTORS["what is the dentist's phone number"]
    rate(store, "what is the dentist's phone number", ["dentist"], good=True)
    assert order(store.adjust(ranking(), lambda: q))[0] == "dentist"
    rate(store, "what is the dentist's phone number", ["dentist"], good=False)  # same answer: replaced
    assert store.count() == 1
    assert order(store.adjust(ranking(), lambda: q)) == ["vet", "dentist", "gp", "garden"]
    [rating] = store.ratings()
    assert rating.as_dict()["rating"] == "bad" and rating.memory_ids == ["dentist"]
    assert store.undo(rating.id) and not store.undo(rating.id)
    assert store.count() == 0 and store.adjust(ranking(), lambda: q)[1].score == 2.8


def test_ratings_fade_with_their_half_life(store: FeedbackStore, clock: FixedClock) -> None:
    q = VECTORS["what is the dentist's phone number"]
    rate(store, "what is the dentist's phone number", ["vet"], good=False)
    fresh = store.effects(q, ["vet"])["vet"]
    clock.advance(days=store.config.half_life_days)
    assert store.effects(q, ["vet"])["vet"] == pytest.approx(fresh / 2)


def test_threshold_decides_what_counts_as_similar(tmp_path: Path, clock: FixedClock) -> None:
    strict = FeedbackStore(
        tmp_path / "f.sqlite3", lambda q: VECTORS[q], clock, FeedbackConfig(threshold=0.97)
    )
    rate(strict, "what is the dentist's phone number", ["vet"], good=False)
    assert strict.effects(VECTORS["dentist phone number please"], ["vet"]) == {}
    assert strict.effects(VECTORS["what is the dentist's phone number"], ["vet"])["vet"] < 0
    strict.close()


# ---------------------------------------------------------------- through the API


@pytest.fixture
def services(tmp_path: Path, clock: FixedClock, fake_llm: FakeLLM) -> Services:
    """The daemon with memory on (the hashing embedder): recall, and ratings stored beside the memory."""
    settings = load_settings(None, data_dir=tmp_path / "data", memory={"enabled": True}, scheduler={"enabled": False})
    return build_services(settings, clock=clock, llm=fake_llm, embedder=HashingEmbedder())


@pytest.fixture
def mc(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services)) as c:
        yield c


def ask(c: TestClient, text: str, **extra: Any) -> dict[str, Any]:
    r = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": text}], **extra})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_rating_an_answer_moves_its_memories_and_undo_restores(
    mc: TestClient, services: Services, fake_llm: FakeLLM
) -> None:
    fake_llm.reply = "The number is 555 0199."  # uses both notes ("555"): a rating moves what the answer used
    assert services.memory is not None
    wrong = services.memory.add("The vet's phone number is 555 0199, ask for the dentist on call", "note")
    right = services.memory.add("The dentist's phone number is 555 0142", "note")
    question = "what is the dentist's phone number"
    out = ask(mc, question)
    top = out["recalled"][0]["id"]
    assert out["turn_id"] >= 2 and {top, out["recalled"][1]["id"]} == {wrong, right}

    def scores() -> dict[str, float]:
        assert services.memory is not None
        return {h.record.id: h.score for h in services.memory.search(question, k=5)}

    before = scores()  # the chat's own turns are memories now too
    r = mc.post("/api/feedback", json={"conversation_id": out["conversation_id"], "turn_id": out["turn_id"],
                                       "rating": "bad"})  # fmt: skip
    assert r.status_code == 201, r.text
    rated = r.json()
    assert rated["rating"] == "bad" and rated["question"] == question
    record = services.memory.get(top)
    assert record is not None and rated["memories"][0] == {
        "id": top,
        "text": record.text,
        "effect": "demoted",
    }
    after = scores()
    assert after[top] < before[top]
    assert {i: v for i, v in after.items() if i not in rated["memory_ids"]} == {
        i: v for i, v in before.items() if i not in rated["memory_ids"]
    }
    listed = mc.get("/api/feedback").json()
    assert listed["total"] == 1 and listed["data"][0]["id"] == rated["id"]
    assert mc.delete(f"/api/feedback/{rated['id']}").json() == {"id": rated["id"], "undone": True}
    assert scores() == before
    assert mc.delete(f"/api/feedback/{rated['id']}").status_code == 404


def test_rating_the_newest_answer_and_errors(mc: TestClient) -> None:
    conv = ask(mc, "hello there")["conversation_id"]
    r = mc.post("/api/feedback", json={"conversation_id": conv, "rating": "good"})  # the newest answer
    assert r.status_code == 201 and r.json()["memories"] == []
    assert (
        mc.post("/api/feedback", json={"conversation_id": "conv-nope", "rating": "good"}).status_code == 404
    )
    r = mc.post("/api/feedback", json={"conversation_id": conv, "turn_id": 1, "rating": "good"})
    assert r.status_code == 404 and "turn id 1" in r.json()["error"]["message"]  # turn 1 is the question
    bad = mc.post("/api/feedback", json={"conversation_id": conv, "rating": "meh"})
    assert bad.status_code in (400, 422) and "error" in bad.json()


def test_feedback_is_503_when_memory_is_off(settings: Settings, fake_llm: FakeLLM) -> None:
    with TestClient(create_app(build_services(settings, llm=fake_llm))) as client:  # conftest's: memory off
        r = client.post("/api/feedback", json={"conversation_id": "conv-x", "rating": "good"})
        assert r.status_code == 503 and "memory" in r.json()["error"]["message"]
        assert client.get("/api/feedback").status_code == 503


def test_the_daemon_wires_feedback_and_rules_to_its_memory(tmp_path: Path) -> None:
    """build_services with memory on (the hashing embedder in place of the ONNX one): ratings are stored
    beside the memory, search uses them, and the rules layer writes to the same memory."""
    import sqlite3

    settings = load_settings(
        None, data_dir=tmp_path / "data", scheduler={"enabled": False}, notify={"desktop": False}
    )
    llm = FakeLLM("The bike lock code is 4512.")  # an answer that used the note
    services = build_services(settings, clock=FixedClock(), llm=llm, embedder=HashingEmbedder())
    assert services.memory is not None and services.memory.feedback is services.chat.feedback
    assert (tmp_path / "data" / "memory" / "feedback.sqlite3").exists()
    with TestClient(create_app(services)) as c:
        ask(c, "remember that the bike lock code is 4512")
        out = ask(c, "what is the bike lock code?")
        assert out["recalled"][0]["text"] == "the bike lock code is 4512"
        r = c.post("/api/feedback", json={"conversation_id": out["conversation_id"], "rating": "good"})
        assert r.status_code == 201 and r.json()["memories"][0]["effect"] == "preferred"
        hits = services.memory.search("what is the bike lock code?", k=3)
        assert "feedback" in hits[0].retrievers
    assert services.memory.feedback is not None
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        services.memory.feedback.count()  # closed with the memory


def test_conversations_made_before_personas_and_ratings_are_migrated(tmp_path: Path) -> None:
    import sqlite3

    from assistant.chat.conversations import ConversationStore

    path = tmp_path / "conversations.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE conversations (id TEXT PRIMARY KEY, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
        "CREATE TABLE turns (id INTEGER PRIMARY KEY AUTOINCREMENT, conversation_id TEXT NOT NULL, role TEXT NOT NULL,"
        " content TEXT NOT NULL, created_at TEXT NOT NULL);"
        "INSERT INTO conversations VALUES ('c1', 'x', 'x');"
        "INSERT INTO turns(conversation_id, role, content, created_at) VALUES ('c1', 'user', 'hi', 'x'),"
        " ('c1', 'assistant', 'hello', 'x');"
    )
    db.commit()
    db.close()
    store = ConversationStore(path)
    assert store.persona("c1") is None
    found = store.answer("c1")
    assert found is not None and found[0].recalled == () and found[1] == "hi"
    store.append("c1", [("user", "more"), ("assistant", "sure")], FixedClock().now(), persona="terse",
                 recalled=["mem-1", "mem-2"])  # fmt: skip
    assert store.persona("c1") == "terse"
    answer, question = store.answer("c1") or (None, "")
    assert answer is not None and answer.recalled == ("mem-1", "mem-2") and question == "more"
    assert store.answer("c1", 2) is not None and store.answer("c1", 1) is None  # turn 1 is a question
    store.close()
