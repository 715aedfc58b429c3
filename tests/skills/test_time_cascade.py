"""The `time` skill's phrasing cascade: fixed examples, a grammar made of the facts' own numbers, the check
by code, tries with new seeds in a time budget, the plain facts as the fallback; a tone changes only how it
sounds."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from assistant.config import ModelSettings, Settings
from assistant.llm.model_file import bundled_model_path
from assistant.llm.types import ChatMessage, Completion, GenerationParams
from assistant.services import build_services
from assistant.skillkit.api import SkillContext
from skills.tell_time import EXAMPLES, facts, phrase_sentence, phrasing_is_right, sentence_grammar
from tests.fakes import FixedClock

BERLIN_1PM = datetime(2026, 1, 15, 13, 0, tzinfo=ZoneInfo("Europe/Berlin"))
PLAIN = facts(BERLIN_1PM)


class ScriptedWorker:
    """A TextGenerator that answers from a list, one reply per call, recording messages and parameters."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.params: list[GenerationParams] = []
        self.messages: list[list[ChatMessage]] = []

    def generate_text(self, messages: list[ChatMessage], params: GenerationParams) -> Completion:
        self.params.append(params)
        self.messages.append(messages)
        return Completion(self.replies[min(len(self.params), len(self.replies)) - 1], "stop")


def ctx_for(worker: ScriptedWorker, settings: Settings) -> SkillContext:
    return SkillContext(clock=FixedClock(), settings=settings, worker=worker)


def test_wrong_sentences_are_retried_with_new_seeds_and_the_first_right_one_is_used(
    settings: Settings,
) -> None:
    worker = ScriptedWorker(
        "It's 2:00 PM on Thursday!", "It's 1:00 PM on Friday.", "Good afternoon, it's 1:00 PM!"
    )
    text, used, calls = phrase_sentence(ctx_for(worker, settings), BERLIN_1PM, PLAIN, tries=3, seconds=60)
    assert (text, used, calls) == ("Good afternoon, it's 1:00 PM!", True, 3)
    assert len({p.seed for p in worker.params}) == 3
    assert {p.grammar for p in worker.params} == {sentence_grammar(BERLIN_1PM)}


def test_the_facts_are_the_fallback_and_the_budget_stops_new_tries(settings: Settings) -> None:
    worker = ScriptedWorker("It's 2:00 PM.")
    assert phrase_sentence(ctx_for(worker, settings), BERLIN_1PM, PLAIN, tries=3, seconds=60) == (
        PLAIN,
        False,
        3,
    )
    worker = ScriptedWorker("It's 2:00 PM.")
    assert phrase_sentence(ctx_for(worker, settings), BERLIN_1PM, PLAIN, tries=3, seconds=0) == (
        PLAIN,
        False,
        1,
    )
    worker = ScriptedWorker("It's 1:00 PM.")
    assert phrase_sentence(ctx_for(worker, settings), BERLIN_1PM, PLAIN, grammar=False)[1]
    assert worker.params[0].grammar is None
    no_model = SkillContext(clock=FixedClock(), settings=settings, worker=None)
    assert phrase_sentence(no_model, BERLIN_1PM, PLAIN) == (PLAIN, False, 0)


def test_the_prompt_shows_the_shape_and_the_examples_pass_their_own_check(settings: Settings) -> None:
    worker = ScriptedWorker("It's 1:00 PM.")
    phrase_sentence(ctx_for(worker, settings), BERLIN_1PM, PLAIN)
    roles = [m.role for m in worker.messages[0]]
    assert roles == ["system"] + ["user", "assistant"] * len(EXAMPLES) + ["user"]
    assert PLAIN in worker.messages[0][-1].content
    zones = {"CET": "Europe/Paris", "CDT": "America/Chicago", "+08": "Asia/Singapore"}
    for facts_text, sentence in EXAMPLES:
        m = re.match(
            r"It's .* \((\d\d):(\d\d)\) on \w+, (\d+) (\w+) (\d{4}), time zone \S+ \((\S+)\)", facts_text
        )
        assert m
        hour, minute, day, month, year, abbr = m.groups()
        month_no = datetime.strptime(month, "%B").month
        local = datetime(int(year), month_no, int(day), int(hour), int(minute), tzinfo=ZoneInfo(zones[abbr]))
        assert facts(local) == facts_text  # the examples' facts are true ones
        assert phrasing_is_right(sentence, local)


def test_a_tone_changes_the_prompt_not_the_check(settings: Settings) -> None:
    worker = ScriptedWorker("Arr matey, it be 2:00 PM!", "Arr, it be 1:00 PM, matey!")
    text, used, _ = phrase_sentence(ctx_for(worker, settings), BERLIN_1PM, PLAIN, tone="like a pirate")
    assert (text, used) == ("Arr, it be 1:00 PM, matey!", True)  # the wrong hour was refused first
    assert "like a pirate" in worker.messages[0][0].content
    assert worker.params[0].grammar == sentence_grammar(BERLIN_1PM)  # the same grammar whatever the tone


def test_the_grammar_holds_only_the_facts_numbers() -> None:
    from llama_cpp import LlamaGrammar

    gbnf = sentence_grammar(BERLIN_1PM)
    LlamaGrammar.from_string(gbnf, verbose=False)
    assert re.findall(r"\d+", gbnf.split("clock ::=", 1)[1]) == [
        "1",
        "00",
        "13",
        "00",
        "15",
        "2026",
        "15",
        "2026",
        "15",
        "2026",
    ]
    assert not re.search(
        r"\d", gbnf.split("clock ::=", 1)[0].replace("{2,40}", "").replace("{1,30}", "").replace("{0,40}", "")
    )


def test_the_skill_reports_its_tries(services: object, fake_llm: object) -> None:
    from assistant.services import Services
    from tests.fakes import FakeLLM

    assert isinstance(services, Services) and isinstance(fake_llm, FakeLLM)
    fake_llm.reply = "It's 3:00 AM, go back to sleep."  # never right at noon
    result = services.skills.run("time", {"tries": 2, "seconds": 60, "tone": "sleepy"})
    assert result.data["phrased_by_model"] is False and result.data["tries"] == 2
    assert "sleepy" in fake_llm.prompts[0][0].content


@pytest.mark.slow
def test_time_phrasing_on_smollm2(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Two instants on the default bundled model: every answer states the right time, phrased or not."""
    from assistant.llm.llama import LlamaBackend

    backend = LlamaBackend.load(
        bundled_model_path(tmp_path_factory.mktemp("models"), "smollm2"), ModelSettings(n_ctx=1024)
    )
    clock = FixedClock()
    services = build_services(settings, clock=clock, llm=backend)
    phrased = 0
    try:
        for when, zone in [(datetime(2026, 7, 4, 13, 30, tzinfo=UTC), "Europe/Berlin"),
                           (datetime(2026, 5, 20, 14, 45, tzinfo=UTC), "Asia/Tokyo")]:  # fmt: skip
            clock.set(when)
            result = services.skills.run("time", {"tz": zone})
            local = when.astimezone(ZoneInfo(zone))
            assert phrasing_is_right(result.text, local) or result.text == facts(local)
            phrased += result.data["phrased_by_model"]
            print(f"\n{zone}: {result.text}")
    finally:
        services.close()  # closes the backend too
    print(f"SmolLM2: {phrased}/2 sentences phrased by the model")
