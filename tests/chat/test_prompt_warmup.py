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


def test_the_model_is_warmed_from_a_thread_that_ends_not_from_the_one_waiting_for_midnight(
    settings: Settings, clock: FixedClock
) -> None:
    # llama.cpp (OpenMP) keeps a team of worker threads for each thread that called it: a warm-up made by the
    # thread that then waits for midnight kept a second team alive, and streamed decode fell to 0.41 of
    # llama-server's on SmolLM2 (benchmarks/bench_chat.py).
    callers: list[threading.Thread] = []

    class Recording(WarmingLLM):
        def warm_system_prompt(self, system_text: str) -> str:
            callers.append(threading.current_thread())
            return super().warm_system_prompt(system_text)

    llm = Recording()
    services = build_services(settings, clock=clock, llm=llm)
    waiting = start_warmup(services.llm, services.chat)
    try:
        assert waiting is not None and llm.done.wait(30)
        assert len(callers) == 1 and callers[0] is not waiting
        callers[0].join(30)
        assert not callers[0].is_alive() and waiting.is_alive()  # the warming thread ended; the waiting one waits
    finally:
        llm.close()
        waiting.join(30)
