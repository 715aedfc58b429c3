"""The recall-to-answer loop (issue 22): the assistant's own answers are not recalled as facts, an unrelated
question recalls nothing, the user's notes come first, and a rating moves only the memories the answer used.

Memory is real (Chroma dir, FTS5) with the hashing embedder; the chat goes through the HTTP API with a fake
model that answers wrongly. The hashing embedder's cosine counts shared stop words ("what", "is", "the"), so
two unrelated questions are about 0.35 close under it where MiniLM puts them near 0.1: the chat tests set
the dense floor to 0.5 (the real embedder's figures are in docs/memory.md, "The recall-to-answer loop").
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from assistant.llm.types import ChatMessage
from assistant.services import Services
from memory.feedback import FeedbackStore
from memory.overlap import content_words, used_memory
from memory.recall import MemoryRecall
from memory.service import MemoryService
from tests.fakes import FixedClock
from tests.memory.memory_chat import ask, memory_chat
from tests.memory_fakes import HashingEmbedder, fake_memory

NOTES = (
    "Tomas is allergic to peanuts",
    "The wifi password is harbour-lantern-42",
    "The bike lock code is 4821",
    "Mum's birthday is on 14 March",
    "The dentist is Dr Okafor, phone 020 7946 0321",
    "Our car is a green Skoda Fabia",
    "Recycling goes out on Thursday evenings",
    "The spare key is under the flower pot by the shed",
    "Grandma's flat is number 12 on Elm Street",
    "The gym membership renews in September",
)
WRONG = {  # unrelated questions and the fake model's wrong answers to them (none a sum or a date: calc and
    # when answer those by code, without the model)
    "Why is the sky blue?": "The sky reflects the ocean, which is why it looks green at noon.",
    "Which planet is closest to the Sun?": "Mars is the planet closest to the Sun.",
    "What is the capital of Australia?": "Sydney is the capital of Australia.",
    "How many legs does a spider have?": "A spider has six legs.",
    "What colour is a ripe banana?": "A ripe banana is blue.",
    "Who painted the Mona Lisa?": "Vincent van Gogh painted the Mona Lisa.",
    "How long should I boil an egg?": "Boil an egg for about an hour.",
    "Who wrote Hamlet?": "Charles Dickens wrote Hamlet.",
    "What is the tallest mountain on Earth?": "Mount Kilimanjaro is the tallest mountain on Earth.",
    "How far away is the Moon?": "The Moon is about 100 kilometres away.",
}


ANSWERS = {"Is Tomas allergic to anything?": "No, Tomas has no allergies."}  # wrong: ignores the note


def reply(messages: list[ChatMessage]) -> str:
    text = messages[-1].content
    for question, answer in (WRONG | ANSWERS).items():
        if text.endswith(question):
            return answer
    return "I have no additional information."


@pytest.fixture
def chat(tmp_path: Path, clock: FixedClock) -> Iterator[tuple[TestClient, Services]]:
    """The daemon with memory on (the hashing embedder, so a dense floor of 0.5: see above) and feedback."""
    with memory_chat(tmp_path, clock, reply) as c:
        yield c


def test_wrong_answers_are_not_recalled_as_facts_and_the_note_comes_first(
    chat: tuple[TestClient, Services],
) -> None:
    c, services = chat
    assert services.memory is not None
    for note in NOTES:
        services.memory.add(note, source="note")
    for question, answer in WRONG.items():
        out = ask(c, question)
        assert out["choices"][0]["message"]["content"] == answer
        assert all(i["kind"] != "answer" for i in out["recalled"]), (question, out["recalled"])
    stored = {r.text for r in services.memory.list(limit=100)[0]}
    assert set(WRONG.values()) <= stored  # the answers are kept (apart), not thrown away

    # An unrelated question recalls nothing: not the ten earlier turns, not the notes.
    assert ask(c, "What is the boiling point of water?")["recalled"] == []

    out = ask(c, "Is Tomas allergic to anything?")
    recalled = out["recalled"]
    assert recalled[0]["text"] == "Tomas is allergic to peanuts" and recalled[0]["kind"] == "note"
    assert not {i["text"] for i in recalled} & set(WRONG.values())
    # Asked again in a new conversation: the earlier wrong answer shares its words, so it may come back,
    # but below the note and the user's words, labelled as the assistant's, never as the user's.
    again = ask(c, "Is Tomas allergic to anything?")["recalled"]
    assert again[0]["text"] == "Tomas is allergic to peanuts"
    kinds = [i["kind"] for i in again]
    assert kinds == sorted(kinds, key=["note", "user", "skill", "untrusted", "question", "answer"].index)
    answers = [i for i in again if i["kind"] == "answer"]
    assert len(answers) <= 1 and all(i["source"] == "assistant" for i in answers)


def rate(c: TestClient, out: dict[str, Any], rating: str) -> dict[str, Any]:
    r = c.post("/api/feedback", json={"conversation_id": out["conversation_id"], "turn_id": out["turn_id"],
                                      "rating": rating})  # fmt: skip
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_feedback_moves_the_note_only_when_the_answer_used_it(chat: tuple[TestClient, Services]) -> None:
    """Issue 22's scenario through the API: the right note recalled, the answer ignores it."""
    c, services = chat
    assert services.memory is not None
    note = services.memory.add("Tomas is allergic to peanuts", source="note")
    q = "Is Tomas allergic to anything?"

    def shift() -> float:
        assert services.memory is not None
        hit = next(h for h in services.memory.search(q, k=10) if h.record.id == note)
        return float(hit.retrievers.get("feedback", {}).get("shift", 0.0))

    ignored = ask(c, q)  # "No, Tomas has no allergies."
    assert ignored["recalled"][0]["id"] == note
    bad = rate(c, ignored, "bad")
    assert bad["memory_ids"] == [] and bad["recalled_not_used"] == [note]
    assert shift() == 0.0  # the thumbs-down does not demote the note the answer ignored
    ANSWERS[q] = "I have no additional information."
    try:
        empty = ask(c, q)
        assert rate(c, empty, "good")["memory_ids"] == [] and shift() == 0.0
        ANSWERS[q] = "Yes: Tomas is allergic to peanuts."
        used = ask(c, q)
        assert used["recalled"][0]["id"] == note
        good = rate(c, used, "good")
        assert good["memory_ids"] == [note] and good["memories"][0]["effect"] == "preferred"
        assert shift() > 0
    finally:
        ANSWERS[q] = "No, Tomas has no allergies."


def test_the_floor_needs_shared_words_or_a_close_embedding(tmp_path: Path, clock: FixedClock) -> None:
    mem = fake_memory(tmp_path / "mem", clock)
    mem.add("Why is the sky blue?", source="user", conversation_id="c1")
    mem.add("The sky is blue because air scatters blue light", source="assistant", conversation_id="c1")
    mem.add("What is the capital of France?", source="user", conversation_id="c2")
    mem.add("Paris is the capital of France", source="assistant", conversation_id="c2")
    recall = MemoryRecall(mem, k=5, token_budget=512, min_similarity=0.9)
    r = recall.recall("Why is the sky so blue at noon?", conversation_id="c3", exclude_texts=[])
    assert [i["kind"] for i in r.items] == ["question"]  # an answer only for a message about what it said
    r = recall.recall("What did you say about why the sky is blue at noon?", conversation_id="c3", exclude_texts=[])
    assert [i["kind"] for i in r.items] == ["question", "answer"]  # the user's words above the answer
    assert r.block is not None and "you answered" in r.block.splitlines()[-1]
    assert recall.recall("What is the time in Tokyo?", conversation_id="c3", exclude_texts=[]).items == []
    loose = MemoryRecall(mem, k=5, token_budget=512, min_similarity=0.0)
    assert loose.recall("What is the time in Tokyo?", conversation_id="c3", exclude_texts=[]).items == []
    # ... chat questions and answers need shared words whatever the cosine; a note can be near enough
    mem.add("Our flight lands at noon", source="note")
    items = loose.recall("What is the time in Tokyo?", conversation_id="c3", exclude_texts=[]).items
    assert [i["kind"] for i in items] == ["note"]
    # A note that answers: the earlier chat about the sky is left out (it would only sit beside it).
    mem.add("The sky over the bay is blue at noon", source="note")
    r = recall.recall("Why is the sky so blue at noon?", conversation_id="c3", exclude_texts=[])
    assert {i["kind"] for i in r.items} == {"note"}
    mem.close()


# -- did the answer use the memory? -------------------------------------------------------------------


def test_content_words_drop_stop_words_and_stem() -> None:
    assert content_words("Is Tomas allergic to any peanuts?") == content_words("tomas allergic peanut")
    assert len(content_words("Is Tomas allergic to any peanuts?")) == 3
    assert content_words("I was walking in Mum's neighbourhood") == content_words("mum walk neighbourhood")
    assert content_words("The code is 4821, or 7.30 on 14 March") >= {"4821", "7.30", "14"}
    assert len(content_words("The code is 4821, or 7.30 on 14 March")) == 5
    assert content_words("Yes, okay. No, I don't know.") == frozenset()


@pytest.mark.parametrize(
    ("answer", "used"),
    [
        ("No", False),
        ("No, Tomas is not allergic to anything.", False),
        ("I have no additional information.", False),
        ("Yes, he is allergic to peanuts.", True),
        ("Tomas has a peanut allergy.", True),
    ],
)
def test_an_answer_uses_a_memory_when_it_repeats_what_the_question_did_not_say(answer: str, used: bool) -> None:
    assert used_memory("Is Tomas allergic to anything?", answer, "Tomas is allergic to peanuts") is used


# -- feedback lands on the memory the answer used ----------------------------------------------------


@pytest.fixture
def rated(tmp_path: Path, clock: FixedClock) -> Iterator[tuple[MemoryService, FeedbackStore]]:
    mem = fake_memory(tmp_path / "mem", clock)
    store = FeedbackStore(tmp_path / "feedback.sqlite3", mem.query_vector, clock, texts=mem.texts)
    mem.feedback = store
    yield mem, store
    store.close()
    mem.close()


def _shift(mem: MemoryService, question: str, memory_id: str) -> float:
    hit = next(h for h in mem.search(question, k=10) if h.record.id == memory_id)
    return float(hit.retrievers.get("feedback", {}).get("shift", 0.0))


def test_a_rating_moves_only_the_memory_the_answer_used(
    rated: tuple[MemoryService, FeedbackStore],
) -> None:
    mem, store = rated
    note = mem.add("Tomas is allergic to peanuts", source="note")
    other = mem.add("Tomas plays football on Saturdays", source="note")
    q = "Is Tomas allergic to anything?"
    selected = MemoryRecall(mem, min_similarity=0.5).select(q, conversation_id="c1", exclude_texts=[q])
    assert selected[0].record.id == note
    recalled = [note, other]  # as if both had been recalled into the answer

    def rate(answer: str, good: bool, turn: int) -> dict[str, Any]:
        return store.record(question=q, memory_ids=recalled, good=good, conversation_id="c1", turn_id=turn,
                            answer=answer).as_dict()  # fmt: skip

    ignored = rate("No", good=False, turn=2)  # the answer ignored the note: thumbs-down says nothing of it
    assert ignored["memory_ids"] == [] and ignored["recalled_not_used"] == recalled
    assert _shift(mem, q, note) == 0.0
    empty = rate("I have no additional information.", good=True, turn=4)
    assert empty["memory_ids"] == [] and _shift(mem, q, note) == 0.0
    used = rate("Yes, Tomas is allergic to peanuts.", good=True, turn=6)
    assert used["memory_ids"] == [note] and used["recalled_not_used"] == [other]
    assert _shift(mem, q, note) > 0 and _shift(mem, q, other) == 0.0
    wrong = rate("Tomas plays football, so no allergies.", good=False, turn=8)  # used the wrong memory
    assert wrong["memory_ids"] == [other] and _shift(mem, q, other) < 0
    listed = {r.turn_id: r for r in store.ratings()}
    assert listed[2].memory_ids == [] and listed[2].not_used == recalled
    assert listed[6].memory_ids == [note] and listed[6].not_used == [other]


def test_without_the_answer_every_recalled_memory_moves_as_before(
    rated: tuple[MemoryService, FeedbackStore],
) -> None:
    mem, store = rated
    note = mem.add("Tomas is allergic to peanuts", source="note")
    q = "Is Tomas allergic to anything?"
    rating = store.record(question=q, memory_ids=[note], good=False, conversation_id="c1", turn_id=2)
    assert rating.memory_ids == [note] and rating.not_used == []
    assert _shift(mem, q, note) < 0
    store.texts = None  # a store that cannot read the memories: the answer cannot be checked
    rating = store.record(question=q, memory_ids=[note], good=True, conversation_id="c1", turn_id=2, answer="No")
    assert rating.memory_ids == [note] and _shift(mem, q, note) > 0


def test_ratings_stored_before_used_ranks_still_count(tmp_path: Path, clock: FixedClock) -> None:
    import sqlite3
    from array import array

    embed = HashingEmbedder()
    path = tmp_path / "feedback.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE ratings (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at REAL NOT NULL,"
        " conversation_id TEXT NOT NULL, turn_id INTEGER NOT NULL, good INTEGER NOT NULL, question TEXT NOT NULL,"
        " vector BLOB NOT NULL, UNIQUE(conversation_id, turn_id));"
        "CREATE TABLE rated_memories (rating_id INTEGER NOT NULL REFERENCES ratings(id) ON DELETE CASCADE,"
        " memory_id TEXT NOT NULL, rank INTEGER NOT NULL, PRIMARY KEY (rating_id, memory_id));"
    )
    vector = array("f", embed.embed(["the question"])[0]).tobytes()
    db.execute("INSERT INTO ratings VALUES (1, ?, 'c1', 2, 0, 'the question', ?)", (clock.now().timestamp(), vector))
    db.execute("INSERT INTO rated_memories VALUES (1, 'mem-a', 1), (1, 'mem-b', 2)")
    db.commit()
    db.close()
    store = FeedbackStore(path, lambda q: embed.embed([q])[0], clock)
    [rating] = store.ratings()
    assert rating.memory_ids == ["mem-a", "mem-b"] and rating.not_used == []
    effects = store.effects(embed.embed(["the question"])[0], ["mem-a", "mem-b"])
    assert effects["mem-a"] < effects["mem-b"] < 0  # rank 1 moves most, as before
    store.close()
