"""Personas: chosen per conversation (request field, /persona), their system prompt and sampling, and what a
persona must not change: the time skill's facts, the untrusted block around recalled feed text, and the
refusal of an instruction planted in a headline (the slow test, with the real model)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from assistant.app import create_app
from assistant.chat.personas import BUILT_IN, Persona, PersonaBook, dated_system_prompt, time_note
from assistant.config import Settings, load_settings
from assistant.core.errors import BadRequest, ConfigError
from assistant.core.text import strip_links
from assistant.services import build_services
from tests.fakes import FakeLLM, FixedClock
from tests.feeds.test_planted_headline import (
    PLANTED,
    QUESTION,
    assert_headline_only_in_untrusted_block,
    follows_the_planted_instruction,
)
from tests.memory_fakes import HashingEmbedder, memory_services

NAMES = [p.name for p in BUILT_IN]


def persona_part(system: str) -> str:
    """The persona's own prompt in a system message (the calendar comes first: dated_system_prompt)."""
    return system.split("\n\n", 1)[-1]


def say(c: TestClient, text: str, **extra: Any) -> dict[str, Any]:
    r = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": text}], **extra})
    assert r.status_code == 200, r.text
    return dict(r.json())


@pytest.fixture
def llm() -> FakeLLM:
    return FakeLLM()


@pytest.fixture
def pc(settings: Settings, clock: FixedClock, llm: FakeLLM) -> Iterator[TestClient]:
    with TestClient(create_app(build_services(settings, clock=clock, llm=llm))) as c:
        yield c


def test_the_built_in_personas_are_listed(pc: TestClient) -> None:
    got = pc.get("/api/personas").json()
    assert got["default"] == "helpful"
    assert [p["name"] for p in got["data"]] == sorted(NAMES) == ["grumpy", "helpful", "terse"]
    assert all(p["system_prompt"] and p["description"] for p in got["data"])


def test_a_persona_chosen_by_request_stays_with_the_conversation(pc: TestClient, llm: FakeLLM) -> None:
    first = say(pc, "How do I boil an egg?", persona="terse")
    assert first["persona"] == "terse"
    book = PersonaBook()
    assert persona_part(llm.prompts[-1][0].content) == book.get("terse").system_prompt
    again = say(pc, "And poach one?", conversation_id=first["conversation_id"])
    assert again["persona"] == "terse" and persona_part(llm.prompts[-1][0].content) == book.get("terse").system_prompt
    say(pc, "Thanks", conversation_id=first["conversation_id"], persona="helpful")
    assert persona_part(llm.prompts[-1][0].content) == book.get("helpful").system_prompt
    fresh = say(pc, "Hi")
    assert fresh["persona"] == "helpful" and persona_part(llm.prompts[-1][0].content) == book.get("helpful").system_prompt


def test_a_chat_turns_saved_state_is_grouped_by_its_conversation(pc: TestClient, llm: FakeLLM) -> None:
    first = say(pc, "How do I boil an egg?")
    assert llm.params[-1].state_group == first["conversation_id"] and llm.params[-1].save_state
    say(pc, "And poach one?", conversation_id=first["conversation_id"])
    other = say(pc, "Hi")
    assert [p.state_group for p in llm.params] == [first["conversation_id"]] * 2 + [other["conversation_id"]]


def test_an_unknown_persona_is_a_400_naming_the_known_ones(pc: TestClient, llm: FakeLLM) -> None:
    r = pc.post(
        "/v1/chat/completions", json={"persona": "pirate", "messages": [{"role": "user", "content": "x"}]}
    )
    assert r.status_code == 400
    message = r.json()["error"]["message"]
    assert "pirate" in message and all(n in message for n in NAMES)
    assert r.json()["error"]["code"] == "unknown_persona" and llm.prompts == []


def test_persona_sampling_applies_where_the_request_sets_none(pc: TestClient, llm: FakeLLM) -> None:
    terse = PersonaBook().get("terse")
    say(pc, "Hi", persona="terse")
    assert (llm.params[-1].temperature, llm.params[-1].max_tokens) == (terse.temperature, terse.max_tokens)
    assert llm.params[-1].top_p == 0.95  # terse sets none: the request default
    say(pc, "Hi", persona="terse", temperature=1.2, max_tokens=7)
    assert (llm.params[-1].temperature, llm.params[-1].max_tokens) == (1.2, 7)


def test_a_client_system_message_follows_a_chosen_persona(pc: TestClient, llm: FakeLLM) -> None:
    msgs = [{"role": "system", "content": "Always answer in French."}, {"role": "user", "content": "Hi"}]
    pc.post("/v1/chat/completions", json={"messages": msgs})
    assert llm.prompts[-1][0].content == "Always answer in French."  # no persona: as before
    pc.post("/v1/chat/completions", json={"messages": msgs, "persona": "grumpy"})
    system = llm.prompts[-1][0].content
    assert PersonaBook().get("grumpy").system_prompt in system and system.endswith(
        "Always answer in French."
    )


def test_config_adds_personas_and_changes_built_in_ones(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text(
        '[personas.pirate]\nsystem_prompt = "Talk like a pirate."\ntemperature = 0.9\n'
        "[personas.terse]\nmax_tokens = 20\n",
        encoding="utf-8",
    )
    settings = load_settings(toml, data_dir=tmp_path / "d", memory={"enabled": False})
    book = PersonaBook.from_config(settings.personas)
    assert book.names() == ["grumpy", "helpful", "pirate", "terse"]
    assert book.get("pirate") == Persona("pirate", "Talk like a pirate.", temperature=0.9)
    terse = book.get("terse")
    assert terse.max_tokens == 20 and terse.system_prompt == PersonaBook().get("terse").system_prompt
    with pytest.raises(ConfigError, match="system_prompt"):
        PersonaBook.from_config({"nameless": {"temperature": 0.5}})
    with pytest.raises(BadRequest):
        book.get("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text('[personas."has space"]\nsystem_prompt = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="persona name"):
        load_settings(bad)


# ---------------------------------------------------------------- what a persona must not change


def test_time_skill_facts_are_the_same_for_every_persona(pc: TestClient, llm: FakeLLM) -> None:
    answers = {}
    for name in NAMES:
        r = say(pc, "what time is it?", persona=name)
        answers[name] = r["choices"][0]["message"]["content"]
        r2 = say(pc, "/time tz=Asia/Tokyo", persona=name)
        answers[name] += " | " + r2["choices"][0]["message"]["content"]
    assert len(set(answers.values())) == 1, answers
    assert "12:00" in answers["helpful"] and "21:00" in answers["helpful"]  # the fixed clock, UTC and Tokyo
    for prompt in llm.prompts:  # the skill's phrasing request never carries a persona's prompt
        assert not any(p.system_prompt in prompt[0].content for p in BUILT_IN)


def test_the_untrusted_block_is_the_same_for_every_persona(tmp_path: Path, clock: FixedClock) -> None:
    llm = FakeLLM("The library welcomes cats.")
    services = memory_services(tmp_path / "data", clock, llm)
    assert services.memory is not None
    services.memory.add(strip_links(PLANTED), "feed:https://news.example/news.xml")  # as a digest stores it
    after_system = []
    with TestClient(create_app(services)) as c:
        for name in NAMES:
            r = say(c, QUESTION, persona=name)
            assert any(i["untrusted"] for i in r["recalled"])
            prompt = llm.prompts[-1]
            assert_headline_only_in_untrusted_block(prompt)
            assert persona_part(prompt[0].content) == PersonaBook().get(name).system_prompt
            after_system.append([m.content.split("<<<RECALLED-")[0] for m in prompt[1:]])
            # the answer made from untrusted text is stored untrusted whatever the persona
            assert [t.untrusted for t in services.conversations.turns(r["conversation_id"])] == [False, True]
    assert all(a == after_system[0] for a in after_system)  # the same framing and headers for every persona


@pytest.mark.slow
def test_the_planted_instruction_is_refused_under_every_persona(tmp_path: Path) -> None:
    """The bundled model, greedy, with the planted headline recalled: no persona makes it obey."""
    from assistant.llm.backends import build_llm

    settings = load_settings(
        None, data_dir=tmp_path / "data", memory={"enabled": True, "recall_min_similarity": 0.0},
        scheduler={"enabled": False}, notify={"desktop": False}, model={"bundled": "smollm2", "max_tokens": 48},
    )  # fmt: skip
    services = build_services(settings, llm=build_llm(settings), embedder=HashingEmbedder())
    assert services.memory is not None
    services.memory.add(strip_links(PLANTED), "feed:https://news.example/news.xml")  # as a digest stores it
    answers = {}
    with TestClient(create_app(services)) as c:
        for name in NAMES:
            r = say(c, QUESTION, persona=name, temperature=0.0, seed=1)
            answers[name] = r["choices"][0]["message"]["content"]
    print(answers)
    for name, answer in answers.items():
        assert answer.strip(), name
        assert not follows_the_planted_instruction(answer), (name, answer)


def test_the_dated_prompt_states_the_day_and_zone_and_stays_the_same_all_day() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    morning = datetime(2026, 3, 18, 0, 5, tzinfo=berlin)
    text = dated_system_prompt("Be kind.", morning)
    assert text.endswith("\n\nBe kind.")  # the persona's words last, nearest the conversation
    for part in ("Wednesday, 18 March 2026", "2026-03-18", "Europe/Berlin", "Yesterday was Tuesday 17 March",
                 "Thursday 19 March", "Wednesday 25 March"):  # fmt: skip
        assert part in text, part
    assert "00:05" not in text and "0:05" not in text  # no time of day
    assert dated_system_prompt("Be kind.", morning.replace(hour=23, minute=59)) == text  # prefix-stable all day
    assert dated_system_prompt("Be kind.", morning + timedelta(days=1)) != text
    utc = dated_system_prompt("x", datetime(2026, 12, 31, 23, 0, tzinfo=UTC))
    assert "Thursday, 31 December 2026" in utc and "UTC" in utc and "Friday 1 January" in utc


def test_the_time_note_is_one_short_line_with_the_local_time() -> None:
    note = time_note(datetime(2026, 3, 18, 21, 7, tzinfo=ZoneInfo("Europe/Berlin")))
    assert "21:07" in note and "Wednesday" in note and "\n" not in note and len(note) < 80
