"""At start the daemon warms the default persona's dated system prompt on a background thread (issue 28);
the first chat's system text is exactly the warmed one, so its evaluated prefix is reused."""

from __future__ import annotations

import threading
from datetime import datetime
from zoneinfo import ZoneInfo

from assistant.chat.prompt_warmup import default_system_text, seconds_to_next_day, start_warmup
from assistant.chat.turn import TurnRequest
from assistant.config import Settings
from assistant.llm.types import ChatMessage, GenerationParams
from assistant.services import build_services
from tests.fakes import FakeLLM, FixedClock


class WarmingLLM(FakeLLM):
    def __init__(self) -> None:
        super().__init__()
        self.warmed: list[str] = []
        self.done = threading.Event()
        self.closing = threading.Event()
        self.kept: list[str] = []

    def keep_system_prompts(self, texts: list[str]) -> None:
        self.kept = list(texts)

    def close(self) -> None:
        self.closing.set()

    def warm_system_prompt(self, system_text: str) -> str:
        self.warmed.append(system_text)
        self.done.set()
        return "built"


def test_start_warms_the_system_prompt_of_the_first_chat(settings: Settings, clock: FixedClock) -> None:
    llm = WarmingLLM()
    services = build_services(settings, clock=clock, llm=llm)
    services.start()
    try:
        assert llm.done.wait(30)
        assert llm.warmed == [default_system_text(services.chat)]
        assert llm.warmed[0] in llm.kept and len(llm.kept) == len(services.chat.personas.all())
        assert "Calendar: today is" in llm.warmed[0]
        request = TurnRequest([ChatMessage("user", "Hello there")], GenerationParams(max_tokens=8))
        services.chat.reply(request)
        assert llm.prompts[-1][0] == ChatMessage("system", llm.warmed[0])
    finally:
        services.close()


def test_a_backend_without_warm_up_is_left_alone(settings: Settings, clock: FixedClock) -> None:
    services = build_services(settings, clock=clock, llm=FakeLLM())
    assert start_warmup(services.llm, services.chat) is None


def test_a_failing_warm_up_only_logs(settings: Settings, clock: FixedClock) -> None:
    class Broken(WarmingLLM):
        def warm_system_prompt(self, system_text: str) -> str:
            self.done.set()
            raise RuntimeError("no")

    llm = Broken()
    services = build_services(settings, clock=clock, llm=llm)
    thread = start_warmup(services.llm, services.chat)
    assert thread is not None and llm.done.wait(30)
    llm.close()
    thread.join(30)
    assert not thread.is_alive()


def test_the_next_warm_up_is_a_minute_after_local_midnight() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    assert seconds_to_next_day(datetime(2026, 12, 7, 23, 59, 0, tzinfo=berlin)) == 120
    assert seconds_to_next_day(datetime(2026, 12, 7, 0, 0, 30, tzinfo=berlin)) == 24 * 3600 + 30


def test_the_warm_up_thread_ends_when_the_backend_closes(settings: Settings, clock: FixedClock) -> None:
    llm = WarmingLLM()
    services = build_services(settings, clock=clock, llm=llm)
    thread = start_warmup(services.llm, services.chat)
    assert thread is not None and llm.done.wait(30)
    llm.close()
    thread.join(30)
    assert not thread.is_alive()
