"""At start the daemon warms the default persona's dated system prompt on a background thread (issue 28);
the first chat's system text is exactly the warmed one, so its evaluated prefix is reused."""

from __future__ import annotations

import threading

from assistant.chat.prompt_warmup import default_system_text, start_warmup
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
    class Broken(FakeLLM):
        def warm_system_prompt(self, system_text: str) -> str:
            raise RuntimeError("no")

    services = build_services(settings, clock=clock, llm=Broken())
    thread = start_warmup(services.llm, services.chat)
    assert thread is not None
    thread.join(30)
    assert not thread.is_alive()
