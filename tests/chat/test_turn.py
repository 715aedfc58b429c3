"""A chat turn owned end to end by the orchestrator (assistant.chat.turn): begun once, answered streaming or
whole, stored once when whole and never when cancelled; which turns go into memory; the date in the prompt."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from assistant.app import create_app
from assistant.chat.orchestrator import ChatService
from assistant.chat.turn import TurnEnd, TurnRequest
from assistant.config import load_settings
from assistant.core.errors import BadRequest
from assistant.llm.types import ChatMessage, Completion, GenerationParams
from assistant.services import Services, build_services
from tests.fakes import FakeLLM, FixedClock
from tests.memory_fakes import HashingEmbedder

PARAMS = GenerationParams(max_tokens=32, temperature=0)


def _services(tmp_path: Path, llm: FakeLLM, *, memory: bool = False, **settings: object) -> Services:
    s = load_settings(
        None, data_dir=tmp_path / "data", memory={"enabled": memory}, scheduler={"enabled": False}, **settings
    )
    return build_services(s, clock=FixedClock(), llm=llm, embedder=HashingEmbedder() if memory else None)


def _ask(text: str) -> list[ChatMessage]:
    return [ChatMessage("user", text)]


async def _stream(services: Services, text: str) -> tuple[str, list[str | TurnEnd]]:
    turn = await services.chat.begin(TurnRequest(_ask(text), PARAMS, None))
    return turn.conversation_id, [event async for event in turn.stream()]


def test_a_streamed_turn_yields_the_text_then_one_end_and_is_stored(tmp_path: Path) -> None:
    services = _services(tmp_path, FakeLLM("Paris is the capital."))
    services.worker.start()
    try:
        cid, events = asyncio.run(_stream(services, "Capital of France?"))
    finally:
        services.close()
    *texts, end = events
    assert all(isinstance(t, str) for t in texts)
    assert "".join(str(t) for t in texts) == "Paris is the capital."
    assert isinstance(end, TurnEnd) and end.finish_reason == "stop" and end.text == "Paris is the capital."
    reopened = _services(tmp_path, FakeLLM())
    try:
        turns = reopened.conversations.turns(cid)
        assert [(t.role, t.content) for t in turns] == [
            ("user", "Capital of France?"), ("assistant", "Paris is the capital.")
        ]
        assert turns[-1].id == end.turn_id
    finally:
        reopened.close()


def test_a_turn_completes_whole_and_the_reply_path_from_a_thread_stores_it(tmp_path: Path) -> None:
    services = _services(tmp_path, FakeLLM("Forty-two."))
    services.worker.start()
    try:

        async def whole() -> tuple[str, TurnEnd | None]:
            turn = await services.chat.begin(TurnRequest(_ask("the answer to everything?"), PARAMS, None))
            return turn.conversation_id, await turn.complete()

        cid, end = asyncio.run(whole())
        assert end is not None and end.text == "Forty-two."
        # the blocking path, for a CLI or an evaluation: the same conversation, continued
        again = services.chat.reply(TurnRequest(_ask("and again?"), PARAMS, cid))
        assert again.text == "Forty-two." and again.turn_id > end.turn_id
        assert [t.content for t in services.conversations.turns(cid)] == [
            "the answer to everything?", "Forty-two.", "and again?", "Forty-two."
        ]
    finally:
        services.close()


def test_a_listener_that_goes_away_stops_the_model_and_nothing_is_stored(tmp_path: Path) -> None:
    gate = threading.Event()  # never set: the model holds its first token until cancelled
    llm = FakeLLM("never finished", gate=gate)
    services = _services(tmp_path, llm)
    services.worker.start()
    try:

        async def abandoned() -> tuple[TurnEnd | None, str]:
            turn = await services.chat.begin(TurnRequest(_ask("hello"), PARAMS, None))
            async def gone() -> bool:
                return llm.started.is_set()

            return await turn.complete(gone=gone), turn.conversation_id

        end, cid = asyncio.run(abandoned())
        assert end is None
        assert llm.cancelled.wait(10)
        assert services.conversations.turns(cid) == []
    finally:
        services.close()


class CancelledWorker:
    """A worker whose every generation comes back cancelled (the daemon stopping, or a client gone)."""

    def generate_text(self, messages: list[ChatMessage], params: GenerationParams) -> Completion:
        return Completion("half an ans", "cancelled")


def test_a_cancelled_generation_through_reply_is_a_bad_request_and_stores_nothing(tmp_path: Path) -> None:
    services = _services(tmp_path, FakeLLM())
    try:
        chat = ChatService(CancelledWorker(), services.conversations, FixedClock())  # type: ignore[arg-type]
        with pytest.raises(BadRequest, match="cancelled"):
            chat.reply(TurnRequest(_ask("hi"), PARAMS, "c-cancel"))
        assert services.conversations.turns("c-cancel") == []
    finally:
        services.close()


def _memories(services: Services) -> list[str]:
    from memory.keyword import Filters

    assert services.memory is not None
    records, _ = services.memory.list(Filters(), 100, 0)
    return [r.text for r in records]


def test_a_plain_openai_client_does_not_fill_memory_but_the_own_clients_do(tmp_path: Path) -> None:
    services = _services(tmp_path, FakeLLM("Noted, sounds lovely."), memory=True)
    with TestClient(create_app(services)) as client:
        plain = {"messages": [{"role": "user", "content": "my favourite colour is teal"}]}
        r = client.post("/v1/chat/completions", json=plain)
        assert r.status_code == 200
        assert _memories(services) == []  # a third-party client: the conversation is kept, memory is not
        cid = r.json()["conversation_id"]
        assert len(client.get(f"/api/conversations/{cid}").json()["messages"]) == 2
        own = {"messages": [{"role": "user", "content": "my cat is called Miso"}], "memory": True}
        assert client.post("/v1/chat/completions", json=own).status_code == 200
        assert "my cat is called Miso" in _memories(services)
        # a client can say no as well
        off = {"messages": [{"role": "user", "content": "my dog is called Rex"}], "memory": False}
        assert client.post("/v1/chat/completions", json=off).status_code == 200
        assert not any("Rex" in m for m in _memories(services))


def test_remember_api_chats_stores_plain_clients_chats(tmp_path: Path) -> None:
    services = build_services(
        load_settings(None, data_dir=tmp_path / "data", memory={"enabled": True, "remember_api_chats": True},
                      scheduler={"enabled": False}),
        clock=FixedClock(), llm=FakeLLM("Noted."), embedder=HashingEmbedder(),
    )  # fmt: skip
    with TestClient(create_app(services)) as client:
        plain = {"messages": [{"role": "user", "content": "my favourite colour is teal"}]}
        assert client.post("/v1/chat/completions", json=plain).status_code == 200
        assert "my favourite colour is teal" in _memories(services)


def test_the_system_prompt_states_the_users_date_and_zone_and_stays_the_same_all_day(tmp_path: Path) -> None:
    llm = FakeLLM("ok")
    settings = load_settings(None, data_dir=tmp_path / "data", memory={"enabled": False},
                             scheduler={"enabled": False}, timezone="Pacific/Auckland")  # fmt: skip
    clock = FixedClock(datetime(2026, 1, 15, 12, 0, tzinfo=UTC))  # already 16 January in Auckland (UTC+13)
    services = build_services(settings, clock=clock, llm=llm)
    with TestClient(create_app(services)) as client:
        client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "how old is the moon?"}]})
        clock.advance(hours=5)  # 06:00 on 16 January in Auckland: the same day
        client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "and now?"}]})
    first, second = (p[0] for p in llm.prompts)
    assert first.role == "system" and "2026-01-16" in first.content and "Friday" in first.content
    assert "Pacific/Auckland" in first.content
    assert first.content == second.content  # the same bytes: llama.cpp reuses the evaluated prefix
    # a client's own system message is the client's: not changed
    with TestClient(create_app(build_services(settings, clock=clock, llm=llm))) as client:
        mine = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
        client.post("/v1/chat/completions", json={"messages": mine})
    assert llm.prompts[-1][0].content == "Be brief."


def test_a_stored_conversation_shows_each_turns_id_so_a_stored_answer_can_be_rated(tmp_path: Path) -> None:
    services = _services(tmp_path, FakeLLM("Canberra."), memory=True)
    with TestClient(create_app(services)) as client:
        r = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "Capital of Australia?"}],
                                                      "memory": True}).json()  # fmt: skip
        shown = client.get(f"/api/conversations/{r['conversation_id']}").json()["messages"]
        assert [m["role"] for m in shown] == ["user", "assistant"]
        assert shown[-1]["turn_id"] == r["turn_id"]
        rated = client.post("/api/feedback", json={"conversation_id": r["conversation_id"],
                                                   "turn_id": shown[-1]["turn_id"], "rating": "good"})  # fmt: skip
        assert rated.status_code == 201
