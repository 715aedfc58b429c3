"""At start, the default persona's system prompt is made ready in the model's context (issue 28).

The chat's system prompt is today's calendar and the default persona's words (``dated_system_prompt``): the
same bytes all day. A backend that keeps evaluated prompt states on disk (``warm_system_prompt``: the
embedded llama.cpp model, assistant.llm.system_state) loads it from there in milliseconds, or evaluates it
once and writes it, on a background thread, so the first chat after a boot evaluates only what follows it.
Every persona's prompt of the day is named to the backend as one whose state it keeps on disk (each is
evaluated and written by its first chat of the day). The calendar changes at midnight: the thread warms the new day's prompt a minute after each local midnight,
until the backend closes (its ``closing`` event). Backends without the method (a remote server, the fakes of
tests) are left alone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from assistant.chat.personas import dated_system_prompt

if TYPE_CHECKING:
    from assistant.chat.orchestrator import ChatService

log = logging.getLogger(__name__)


def default_system_text(chat: ChatService) -> str:
    """The system text of a chat with the default persona and no system message of the client's, today."""
    now = chat.clock.now().astimezone(chat.zone)
    return dated_system_prompt(chat.personas.get(None).system_prompt, now)


def persona_system_texts(chat: ChatService) -> list[str]:
    """Today's system text of each persona (a chat without a system message of the client's)."""
    now = chat.clock.now().astimezone(chat.zone)
    return [dated_system_prompt(p.system_prompt, now) for p in chat.personas.all()]


def seconds_to_next_day(now: datetime, margin: float = 60.0) -> float:
    """Seconds from ``now`` (aware, the user's zone) to ``margin`` seconds after the next local midnight."""
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), now.tzinfo)
    return max(1.0, (midnight - now).total_seconds() + margin)


def in_a_thread_of_its_own(work: Callable[[], None]) -> None:
    """Run ``work`` on a new thread that ends with it. With the thread that waits for midnight warming the
    prompt itself, streamed decode fell to 0.41 of llama-server's on SmolLM2 (0.81 on qwen0.5b;
    benchmarks/bench_chat.py, docs/benchmarks.md). Our reading: llama.cpp's OpenMP runtime keeps a worker
    team for each thread that called it, and a second team kept alive beside the chat's (more threads than
    CPUs) makes libgomp stop spin-waiting between the ops of a token."""
    thread = threading.Thread(target=work, name="prompt-warmup-once", daemon=True)
    thread.start()
    thread.join()


def start_warmup(llm: Any, chat: ChatService) -> threading.Thread | None:
    """Warm the default persona's prompt on a background thread, now and after each midnight (None when the
    backend cannot)."""
    warm = getattr(llm, "warm_system_prompt", None)
    if warm is None:
        return None
    closing: threading.Event = getattr(llm, "closing", None) or threading.Event()

    keep = getattr(llm, "keep_system_prompts", None)

    def once() -> None:
        text = default_system_text(chat)
        started = time.monotonic()
        try:
            if keep is not None:  # the states of these are kept on disk; a client's own system text's are not
                keep(persona_system_texts(chat))
            source = warm(text)
        except Exception:  # noqa: BLE001 - an optimisation: the first chat evaluates the prompt itself
            log.warning("warming the system prompt failed", exc_info=True)
            return
        log.info("system prompt warmed (%s) in %.2f s", source, time.monotonic() - started)

    def run() -> None:
        in_a_thread_of_its_own(once)
        while not closing.wait(seconds_to_next_day(chat.clock.now().astimezone(chat.zone))):
            in_a_thread_of_its_own(once)

    thread = threading.Thread(target=run, name="prompt-warmup", daemon=True)
    thread.start()
    return thread
