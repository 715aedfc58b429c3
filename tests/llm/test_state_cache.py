"""Saved prompt states unused for ``model.prompt_cache_idle_s`` are dropped, and the worker asks for that
between jobs, so a daemon left alone after a busy hour gives the memory back."""

from __future__ import annotations

import threading
from typing import Any

from assistant.core.procmem import trim_heap, tune_malloc
from assistant.llm.state_cache import ExpiringStateCache
from assistant.llm.types import ChatMessage, GenerationParams
from assistant.llm.worker import GenerationWorker
from tests.fakes import FakeLLM


class State:
    def __init__(self, size: int) -> None:
        self.llama_state_size = size


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_states_unused_for_max_idle_are_dropped_and_a_read_keeps_one() -> None:
    clock = Clock()
    cache = ExpiringStateCache(capacity_bytes=100, max_idle=600, clock=clock)
    cache[(1, 2, 3)] = State(10)
    cache[(7, 8)] = State(10)
    clock.now += 400
    assert cache[(1, 2, 3, 4)] is not None  # the longest saved prefix: read, so used now
    clock.now += 300  # (7, 8) unused for 700 s, (1, 2, 3) for 300 s
    assert cache.expire() == 1
    assert list(cache.cache_state) == [(1, 2, 3)]
    clock.now += 600
    assert cache.expire() == 1 and not cache.cache_state and not cache.used


def test_room_made_for_a_new_state_forgets_the_evicted_ones() -> None:
    cache = ExpiringStateCache(capacity_bytes=25, max_idle=600, clock=Clock())
    for key in ((1,), (2,), (3,)):
        cache[key] = State(10)
    assert list(cache.cache_state) == [(2,), (3,)] and set(cache.used) == {(2,), (3,)}


def test_a_conversations_next_turn_replaces_its_last_state() -> None:
    cache = ExpiringStateCache(capacity_bytes=1000, max_idle=600, clock=Clock())
    cache[(1, 2, 3)] = State(10)  # a conversation's first turn
    cache[(9, 9)] = State(10)  # another conversation
    cache[(1, 2, 3, 4, 5)] = State(10)  # the first one's next turn: its tokens begin with the first's
    assert list(cache.cache_state) == [(9, 9), (1, 2, 3, 4, 5)] and set(cache.used) == set(cache.cache_state)
    assert cache[(1, 2, 3, 7)] is cache.cache_state[(1, 2, 3, 4, 5)]  # still found for the old prefix
    cache[(1, 2, 8)] = State(10)  # a different continuation (an edited turn) keeps both
    assert len(cache.cache_state) == 3


def test_a_chat_turn_replaces_its_conversations_last_state_although_recall_changed_the_prompt() -> None:
    # A chat's recalled memories go into the newest user message only, so the next turn's prompt shares the
    # history with the last state, not the whole of it: the prefix rule keeps both; the group does not.
    cache = ExpiringStateCache(capacity_bytes=1000, max_idle=600, clock=Clock())
    cache.put((1, 2, 50, 3), State(10), group="conv-a")  # system, turn 1 (recall 50), answer
    cache.put((1, 2, 60, 4), State(10), group="conv-b")
    cache.put((1, 2, 3, 70, 5), State(10), group="conv-a")  # turn 2 (recall 70): not an extension of turn 1
    assert list(cache.cache_state) == [(1, 2, 60, 4), (1, 2, 3, 70, 5)]
    assert set(cache.used) == set(cache.cache_state) and cache.groups == {
        "conv-a": (1, 2, 3, 70, 5), "conv-b": (1, 2, 60, 4)}  # fmt: skip
    cache[(8,)] = State(10)  # no group: the prefix rule alone
    assert len(cache.cache_state) == 3
    clock = cache.clock
    assert isinstance(clock, Clock)
    clock.now += 700
    assert cache.expire() == 3 and not cache.groups  # an expired state leaves its group


def test_a_group_whose_state_was_evicted_for_room_is_forgotten() -> None:
    cache = ExpiringStateCache(capacity_bytes=25, max_idle=600, clock=Clock())
    cache.put((1,), State(10), group="a")
    cache.put((2,), State(10), group="b")
    cache.put((3,), State(10), group="c")
    assert list(cache.cache_state) == [(2,), (3,)] and cache.groups == {"b": (2,), "c": (3,)}


def test_no_age_limit_keeps_every_state() -> None:
    clock = Clock()
    cache = ExpiringStateCache(capacity_bytes=100, max_idle=0, clock=clock)
    cache[(1,)] = State(10)
    clock.now += 10**6
    assert cache.expire() == 0 and (1,) in cache


class ReleasingLLM(FakeLLM):
    def __init__(self) -> None:
        super().__init__("hello there")
        self.released = threading.Event()
        self.calls = 0

    def release_idle(self) -> int:
        self.calls += 1
        self.released.set()
        return 0


def test_the_worker_releases_between_jobs_and_when_idle() -> None:
    llm = ReleasingLLM()
    worker = GenerationWorker(llm, idle_tick=0.05)
    worker.start()
    try:
        assert llm.released.wait(30)  # nothing to do: it releases
        assert worker.generate_text([ChatMessage("user", "hi")], GenerationParams()).text == "hello there"
        calls = llm.calls
        llm.released.clear()
        assert llm.released.wait(30)  # and keeps doing so while idle (waited for, not slept on)
        assert llm.calls > calls
    finally:
        worker.close()


def test_no_tick_means_no_release() -> None:
    llm = ReleasingLLM()
    worker = GenerationWorker(llm)
    worker.start()
    try:
        assert worker.generate_text([ChatMessage("user", "hi")], GenerationParams()).text == "hello there"
        assert not llm.released.wait(0.2)
    finally:
        worker.close()


def test_malloc_tuning_and_trim_run_on_glibc() -> None:
    import platform

    glibc = platform.libc_ver()[0] == "glibc"
    assert tune_malloc() is glibc
    junk: list[Any] = [bytearray(1 << 16) for _ in range(200)]  # 12.5 MiB in the heap, then freed
    del junk
    assert isinstance(trim_heap(), bool)


def test_skills_prompts_are_not_kept_but_chat_turns_are(settings: Any) -> None:
    from assistant.services import build_services

    llm = FakeLLM("It is noon.")
    services = build_services(settings, llm=llm)
    try:
        services.skills.run("time", {})  # phrased by the model: a one-off prompt
        assert llm.params and not any(p.save_state for p in llm.params)
        llm.params.clear()
        services.worker.generate_text([ChatMessage("user", "hi")], GenerationParams())  # a chat turn's default
        assert [p.save_state for p in llm.params] == [True]
    finally:
        services.close()
