"""Every service the daemon runs, built once by build_services() and passed to create_app()."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from assistant.chat import ChatService
from assistant.clock import Clock, SystemClock
from assistant.config import Settings
from assistant.conversations import ConversationStore
from assistant.llm import LLMBackend
from assistant.worker import GenerationWorker

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    clock: Clock
    llm: LLMBackend
    worker: GenerationWorker
    conversations: ConversationStore
    chat: ChatService
    # Optional parts: None when disabled or not built (tests build only what they need).
    memory: Any | None = None  # memory.service.MemoryService
    feeds: Any | None = None  # assistant.feeds.FeedService
    skills: Any | None = None  # skills registry / runner
    scheduler: Any | None = None  # assistant.scheduler.SkillScheduler
    notifier: Any | None = None  # assistant.notify.Notifier
    # Called by start() and close(), in order, for parts that run in the background.
    on_start: list[Callable[[], None]] = field(default_factory=list)
    on_close: list[Callable[[], None]] = field(default_factory=list)

    def start(self) -> None:
        self.worker.start()
        for fn in self.on_start:
            fn()

    def close(self) -> None:
        for fn in reversed(self.on_close):
            try:
                fn()
            except Exception:  # noqa: BLE001 - close the rest anyway
                log.exception("closing a service failed")
        self.worker.close()
        self.conversations.close()
        self.llm.close()


def build_llm(settings: Settings) -> LLMBackend:
    if settings.model.backend == "openai":
        from assistant.llm_remote import RemoteBackend

        return RemoteBackend.from_settings(settings.model)
    from assistant.llm_llama import LlamaBackend
    from assistant.model_file import resolve_model_path

    return LlamaBackend.load(resolve_model_path(settings), settings.model)


def build_services(settings: Settings, *, clock: Clock | None = None, llm: LLMBackend | None = None) -> Services:
    """Build the real services. ``llm`` may be given (tests, benchmarks) to skip loading a model."""
    clock = clock or SystemClock()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    llm = llm or build_llm(settings)
    worker = GenerationWorker(llm, settings.server.queue_size, settings.server.retry_after)
    conversations = ConversationStore(settings.data_dir / "conversations.sqlite3")
    chat = ChatService(worker, conversations, clock)
    services = Services(settings, clock, llm, worker, conversations, chat)
    # Optional parts plug in below, in this order; each block is owned by its part.
    # [memory]
    if settings.memory.enabled:
        from memory.recall import build_recall
        from memory.service import build_memory

        services.memory = build_memory(settings, clock)
        chat.memory = build_recall(services.memory, settings)
        services.on_start.append(services.memory.warm_up)
        services.on_close.append(services.memory.close)
    if settings.notify.enabled:  # [notifier]
        from assistant.notify import build_notifier

        services.notifier = build_notifier(settings, clock)
        services.on_start.append(services.notifier.start)
        services.on_close.append(services.notifier.close)
    # [feeds]
    from assistant.feeds import build_feeds

    services.feeds = build_feeds(settings, clock)
    services.on_close.append(services.feeds.close)
    # [skills+scheduler]
    from assistant.shortcuts import SkillShortcuts
    from assistant.skills_registry import build_skills

    services.skills = build_skills(services)
    chat.shortcuts = SkillShortcuts(services.skills)
    if settings.scheduler.enabled:
        from assistant.scheduler import build_scheduler

        services.scheduler = build_scheduler(services)
    return services
