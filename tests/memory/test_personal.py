"""Questions about the user's own life (memory/personal.py) and the loop they started: "What's my brother's
name?" with nothing about a brother in memory was answered "Your brother's name is Jack.", and that answer
came back as a memory in a new conversation ("Do I have a brother?" -> "Yes, you have a brother named Jack.").

Recall now says, from code, when nothing of the user's own mentions what such a question asks about, and
recalls the assistant's own answers only for a message about what it said. The loop runs through the HTTP
API with real memory (the hashing embedder) and a fake model that invents whatever it is not told not to."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from assistant.cli.eval_notes import load_notes
from assistant.llm.types import ChatMessage
from assistant.services import Services
from memory.personal import absence_line, asks_about_the_assistant, mentions, personal_question
from memory.recall import MemoryRecall
from tests.fakes import FixedClock
from tests.memory.memory_chat import ask, memory_chat
from tests.memory_fakes import fake_memory


@pytest.mark.parametrize(
    ("question", "phrase"),
    [
        ("What's my brother's name?", "my brother's name"),
        ("What is my sister's name?", "my sister's name"),
        ("What's my dentist's phone number?", "my dentist's phone number"),
        ("What time is my flight to Rome?", "my flight to Rome"),
        ("Which school does my daughter go to?", "my daughter"),
        ("Where did I leave my umbrella?", "my umbrella"),
        ("Who is my car insurance with?", "my car insurance"),
        ("What's my boss called?", "my boss"),
        ("What's the code for my bike lock?", "my bike lock"),
        ("Is my passport still valid?", "this"),
        ("Do I have a brother?", "whether I have a brother"),
        ("Did I pay the electricity bill?", "this"),
        ("Thanks. Where is my passport?", "my passport"),
        ("Do you know my blood type?", "my blood type"),
        ("Tell me my brother's name.", "my brother's name"),
    ],
)
def test_a_question_about_the_users_own_life(question: str, phrase: str) -> None:
    found = personal_question(question)
    assert found is not None and found.phrase == phrase


@pytest.mark.parametrize(
    "question",
    [
        "How do I boil an egg?",
        "What's a good gift for my mum's 60th birthday?",
        "I can't sleep at night, what can I try?",
        "If I was born in 1990, in which year do I turn 40?",
        "How do I check the tyre pressure on my bike?",
        "My basil plant is wilting. What should I do?",
        "What should I say when I call my grandma on her birthday?",
        "What do I need for pancakes?",
        "Do I need a visa for Japan?",
        "Can I make beef stew for Sofia?",
        "What's the capital of France?",
        "My brother is called Tom.",  # a statement, not a question
        "Can you tell me a joke about my cat?",
    ],
)
def test_general_help_is_not_a_personal_question(question: str) -> None:
    assert personal_question(question) is None


def test_no_shipped_general_or_everyday_question_is_personal() -> None:
    _, questions = load_notes()
    general = [q.question for q in questions if q.category == "general"]
    assert len(general) >= 6 and all(personal_question(q) is None for q in general)
    everyday = resources.files("assistant.evals").joinpath("everyday.jsonl").read_text().splitlines()
    assert [r for r in map(json.loads, everyday) if personal_question(r["question"])] == []
    unknown = [q for q in questions if q.category == "unknown"]
    assert len(unknown) >= 10 and sum(personal_question(q.question) is not None for q in unknown) >= 10


def test_a_yes_no_question_gets_told_not_to_answer_yes_or_no() -> None:
    brother = personal_question("Do I have a brother?")
    assert brother is not None and "Do not answer yes or no" in absence_line(brother)
    name = personal_question("What's my brother's name?")
    assert name is not None and absence_line(name) == (
        "(You don't know my brother's name: I have never told you. Say that you don't know.)"
    )


def test_a_memory_mentions_a_topic_when_it_holds_all_its_words() -> None:
    blood = personal_question("What's my blood type?")
    assert blood is not None
    assert not mentions(blood, "I take my blood pressure pill every morning at 8.")
    assert mentions(blood, "My blood type is A negative.")
    plate = personal_question("what's my licence plate number?")  # "number" asks for an attribute
    assert plate is not None and mentions(plate, "My car is a blue Skoda Octavia, licence plate B-KL 4821.")


@pytest.mark.parametrize(
    ("message", "about"),
    [
        ("What did you recommend I read on volcanoes?", True),
        ("You said something about Krakatoa", True),
        ("What was your advice on sleep?", True),
        ("Did you tell me my brother's name?", True),
        ("What's my brother's name?", False),
        ("Can you tell me a joke?", False),
        ("Do you know how to boil an egg?", False),
        ("What should I read about volcanoes?", False),
    ],
)
def test_a_message_about_what_the_assistant_said(message: str, about: bool) -> None:
    assert asks_about_the_assistant(message) is about


def test_recall_says_when_nothing_of_the_users_own_mentions_it(tmp_path: Path, clock: FixedClock) -> None:
    mem = fake_memory(tmp_path / "mem", clock)
    mem.add("I take my blood pressure pill every morning at 8.", source="note")
    recall = MemoryRecall(mem, k=5, token_budget=512, min_similarity=0.9)
    brother = personal_question("What's my brother's name?")
    assert brother is not None
    r = recall.recall("What's my brother's name?", conversation_id="c1", exclude_texts=[])
    assert r.block == absence_line(brother) and r.items == [] and not r.tainted
    # A note recalled that does not mention it: the line comes after the memories.
    loose = MemoryRecall(mem, k=5, token_budget=512, min_similarity=0.0)  # one shared word ("blood") is enough
    r = loose.recall("What's my blood type?", conversation_id="c1", exclude_texts=[])
    assert r.block is not None and r.block.endswith("(You don't know my blood type: I have never told you. Say that you don't know.)")
    assert [i["kind"] for i in r.items] == ["note"]
    # The user's earlier question about it is no fact: the line is still there.
    mem.add("What's my brother's name?", source="user", conversation_id="c0")
    r = recall.recall("Do I have a brother?", conversation_id="c1", exclude_texts=[])
    assert [i["kind"] for i in r.items] == ["question"]
    assert r.block is not None and r.block.endswith("Do not answer yes or no; say that you don't know.)")
    # General help gets no line.
    assert recall.recall("How do I boil an egg?", conversation_id="c1", exclude_texts=[]).block is None
    # Said earlier in this conversation (the turn is in the prompt, so not recalled): no line.
    said = ["My brother Tom lives in Oslo.", "Nice!", "What's my brother's name?"]
    assert recall.recall("What's my brother's name?", conversation_id="c1", exclude_texts=said).block is None
    # A note that mentions it: recalled, no line.
    mem.add("My brother is named Tom.", source="note")
    r = recall.recall("What's my brother's name?", conversation_id="c2", exclude_texts=[])
    assert r.block is not None and "Tom" in r.block and "You don't know" not in r.block
    mem.close()


def invent(messages: list[ChatMessage]) -> str:
    """A model that invents a brother when first asked (whatever the prompt says: the loop is checked on its
    own here), then repeats whatever the prompt tells it about him."""
    text = messages[-1].content
    if text.endswith("What's my brother's name?") and not any(m.role == "assistant" for m in messages):
        INVENTED.append(text)
        if len(INVENTED) == 1:
            return "Your brother's name is Jack."
    return "Yes, you have a brother named Jack." if "Jack" in text else "I don't know."


INVENTED: list[str] = []


@pytest.fixture
def chat(tmp_path: Path, clock: FixedClock) -> Iterator[tuple[TestClient, Services]]:
    with memory_chat(tmp_path, clock, invent) as c:
        yield c


def test_an_invented_answer_does_not_come_back_as_a_memory(chat: tuple[TestClient, Services]) -> None:
    c, services = chat
    assert services.memory is not None
    INVENTED.clear()
    services.memory.add("I take my blood pressure pill every morning at 8.", source="note")
    first = ask(c, "What's my brother's name?")
    assert first["choices"][0]["message"]["content"] == "Your brother's name is Jack."  # invented, and stored
    assert "Your brother's name is Jack." in {r.text for r in services.memory.list(limit=50)[0]}
    for question in ("Do I have a brother?", "What's my brother's name?", "Do you know my brother's name?"):
        out = ask(c, question)  # each a new conversation
        assert all(i["kind"] != "answer" for i in out["recalled"]), (question, out["recalled"])
        assert "Jack" not in out["choices"][0]["message"]["content"], question
    # Asked about what it said, the assistant's answer comes back, labelled as its own.
    out = ask(c, "What did you say my brother's name was?")
    answers = [i for i in out["recalled"] if i["kind"] == "answer"]
    assert [i["text"] for i in answers] == ["Your brother's name is Jack."]
