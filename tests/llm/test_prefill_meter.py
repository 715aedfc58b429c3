"""The prefill meter (how fast the model reads a prompt, from its own recent prefills) and the recall budget
it sets: recalled memories are kept to what the model can read in ``memory.recall_seconds``."""

from __future__ import annotations

from pathlib import Path

from assistant.llm.prefill_meter import PrefillMeter, recall_budget
from memory.recall import MemoryRecall
from tests.fakes import FakeLLM, FixedClock
from tests.memory_fakes import memory_services


def test_no_rate_until_a_prefill_long_enough_to_time() -> None:
    meter = PrefillMeter()
    assert meter.rate() is None
    meter.add(4, 0.01)  # a few tokens time overheads, not reading speed
    assert meter.rate() is None
    meter.add(200, 2.0)
    assert meter.rate() == 100.0


def test_the_rate_follows_recent_prefills() -> None:
    meter = PrefillMeter(weight=0.5)
    meter.add(200, 2.0)  # 100 tok/s
    meter.add(200, 1.0)  # 200 tok/s
    rate = meter.rate()
    assert rate is not None and 100.0 < rate < 200.0
    for _ in range(20):
        meter.add(300, 1.0)
    rate = meter.rate()
    assert rate is not None and abs(rate - 300.0) < 1.0


def test_the_budget_shrinks_with_a_slow_model_and_keeps_a_floor() -> None:
    meter = PrefillMeter()
    assert recall_budget(meter, ceiling=512, seconds=1.5) == 512  # nothing measured yet: the setting
    meter.add(1000, 1.0)  # 1000 tok/s: the setting is the smaller
    assert recall_budget(meter, ceiling=512, seconds=1.5) == 512
    slow = PrefillMeter()
    slow.add(200, 2.0)  # 100 tok/s: 1.5 s of reading is 150 tokens
    assert recall_budget(slow, ceiling=512, seconds=1.5) == 150
    crawl = PrefillMeter()
    crawl.add(100, 10.0)  # 10 tok/s: never below the floor, or recall would vanish
    assert recall_budget(crawl, ceiling=512, seconds=1.5, floor=96) == 96
    assert recall_budget(crawl, ceiling=64, seconds=1.5, floor=96) == 64  # a smaller setting still wins
    assert recall_budget(slow, ceiling=512, seconds=0) == 512  # 0: no time limit


def test_the_daemon_sizes_recall_by_its_models_measured_reading_speed(tmp_path: Path) -> None:
    llm = FakeLLM("ok")
    meter = PrefillMeter()
    llm.prefill_meter = meter  # type: ignore[attr-defined]  # as the llama.cpp backend has one
    services = memory_services(tmp_path, FixedClock(), llm, recall_token_budget=400, recall_seconds=1.5)
    try:
        recall = services.chat.memory
        assert isinstance(recall, MemoryRecall)
        assert recall.token_budget == 400  # nothing read yet
        meter.add(300, 3.0)  # 100 tokens a second
        assert recall.token_budget == 150
    finally:
        services.close()
    fixed = memory_services(tmp_path / "b", FixedClock(), FakeLLM("ok"), recall_token_budget=400)
    try:
        assert isinstance(fixed.chat.memory, MemoryRecall) and fixed.chat.memory.token_budget == 400
    finally:
        fixed.close()
