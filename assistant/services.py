"""The one composition root: every part of the daemon is listed once in ``PARTS`` and built here.

``build_services(settings)`` builds the core (model, worker, conversations, chat) and then each part whose
config section has ``enabled = true``, in the order of ``PARTS``. ``create_app`` mounts each part's routers
from the same list; a part that is turned off is ``None`` on ``Services`` and its routes answer 503 with a
message naming the setting that turns it on. ``Services.start``/``close`` start the parts in list order
and close them in reverse (the scheduler stops before the notifier and memory it uses are closed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from assistant.chat.conversations import ConversationStore
from assistant.chat.orchestrator import ChatService
from assistant.chat.personas import PersonaBook
from assistant.chat.rules import ChatRules
from assistant.config import Settings
from assistant.core.clock import Clock, SystemClock
from assistant.core.errors import PartDisabled
from assistant.core.metrics import NULL_RECORDER, Recorder
from assistant.core.sqlite_db import private_dir
from assistant.core.storage_errors import opening_store
from assistant.llm.types import LLMBackend
from assistant.llm.worker import GenerationWorker

if TYPE_CHECKING:
    from assistant.feeds.service import FeedService
    from assistant.notify.service import Notifier
    from assistant.pages.service import PageService
    from assistant.skillkit.registry import SkillRunner
    from assistant.skillkit.scheduler import SkillScheduler
    from memory.service import MemoryService

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Services:
    """The core of the daemon plus each part; a part is None when it is turned off in config."""

    settings: Settings
    clock: Clock
    llm: LLMBackend
    worker: GenerationWorker
    conversations: ConversationStore
    chat: ChatService
    memory: MemoryService | None = None
    notifier: Notifier | None = None
    feeds: FeedService | None = None
    pages: PageService | None = None
    skills: SkillRunner | None = None
    scheduler: SkillScheduler | None = None
    recorder: Recorder = NULL_RECORDER  # what /metrics renders (server.metrics)

    def require(self, name: str, part: T | None) -> T:
        """``part`` itself, or PartDisabled naming the setting that turns ``name`` on."""
        if part is None:
            raise PartDisabled(disabled_message(name))
        return part

    def start(self) -> None:
        self.worker.start()
        for spec in PARTS:
            part = getattr(self, spec.name)
            if part is not None and spec.start is not None:
                spec.start(part)
        self._remember_missed_turns()

    def _remember_missed_turns(self) -> None:
        """Chat turns committed before a crash whose memory copy never landed (assistant.chat.turn_recovery)."""
        memory, hook = self.memory, self.chat.memory
        if memory is None or hook is None:
            return
        from assistant.chat.turn_recovery import remember_pending_turns
        from memory.keyword import Filters

        def remembered(conversation_id: str) -> set[tuple[str, str]]:
            records, _ = memory.list(Filters(conversation_id=conversation_id), 10_000, 0)
            return {(r.source, r.text) for r in records}

        remember_pending_turns(self.conversations, hook, remembered)

    def close(self) -> None:
        # No new chats; then running scheduled jobs finish (within server.stop_timeout) while the model,
        # notifier and memory are still open; then the model stops; then the rest closes.
        self.worker.stop_streams()
        for spec in reversed(PARTS):
            part = getattr(self, spec.name)
            if part is None or spec.close is None:
                continue
            try:
                spec.close(part)
            except Exception:  # noqa: BLE001 - close the rest anyway
                log.exception("closing %s failed", spec.name)
            if spec.name == "scheduler":
                self.worker.close()
        self.worker.close()
        self.conversations.close()
        self.llm.close()


@dataclass(frozen=True)
class PartSpec:
    """One optional part: the ``Services`` attribute it fills, the setting that turns it on, how it is
    built from the services built before it, how it starts and stops, and the API routers it serves."""

    name: str
    setting: str  # the dotted config key, e.g. "memory.enabled"
    build: Callable[[Services], Any]
    routers: tuple[str, ...] = ()  # modules under assistant.api, each with a ``router``
    start: Callable[[Any], None] | None = None
    close: Callable[[Any], None] | None = None

    def enabled(self, settings: Settings) -> bool:
        section, key = self.setting.split(".")
        return bool(getattr(getattr(settings, section), key))


def _build_memory(services: Services) -> MemoryService:
    from memory.recall import build_recall
    from memory.service import build_memory

    memory = build_memory(services.settings, services.clock)
    memory.recorder = services.recorder
    services.recorder.watch("assistant_memories", "memories stored", memory.count)
    services.chat.memory = build_recall(memory, services.settings)
    wire_feedback(services, memory)
    return memory


def wire_feedback(services: Services, memory: MemoryService) -> None:
    """Ratings of answers (memory/feedback.py) beside the memory, and the rules layer's access to memory."""
    from memory.feedback import FeedbackStore

    path = services.settings.data_dir / "memory" / "feedback.sqlite3"
    memory.feedback = FeedbackStore(path, memory.query_vector, services.clock)
    services.chat.feedback = memory.feedback
    if isinstance(services.chat.rules, ChatRules):
        services.chat.rules.memory = memory


def _close_memory(memory: MemoryService) -> None:
    if memory.feedback is not None:
        memory.feedback.close()
    memory.close()


def _build_notifier(services: Services) -> Notifier:
    from assistant.notify.service import build_notifier

    return build_notifier(services.settings, services.clock, recorder=services.recorder)


def _build_feeds(services: Services) -> FeedService:
    from assistant.feeds.service import build_feeds

    return build_feeds(services.settings, services.clock)


def _build_pages(services: Services) -> PageService:
    from assistant.pages.service import build_pages

    return build_pages(services.settings, services.worker.generate_text, services.llm)


def _build_skills(services: Services) -> SkillRunner:
    from assistant.skillkit.registry import build_skills
    from assistant.skillkit.shortcuts import SkillShortcuts

    runner = build_skills(services)
    services.chat.shortcuts = SkillShortcuts(runner)
    return runner


def _build_scheduler(services: Services) -> SkillScheduler | None:
    from assistant.skillkit.scheduler import build_scheduler

    if services.skills is None:
        log.warning("the scheduler is off because skills are turned off (skills.enabled = false)")
        return None
    return build_scheduler(services.settings, services.skills, recorder=services.recorder)


PARTS: tuple[PartSpec, ...] = (
    PartSpec(
        "memory", "memory.enabled", _build_memory, ("memories", "feedback"),
        start=lambda m: m.warm_up(), close=_close_memory,
    ),
    PartSpec(
        "notifier", "notify.enabled", _build_notifier, ("notifications",),
        start=lambda n: n.start(), close=lambda n: n.close(),
    ),
    PartSpec("feeds", "feeds.enabled", _build_feeds, ("feeds",), close=lambda f: f.close()),
    PartSpec("pages", "pages.enabled", _build_pages, close=lambda p: p.close()),
    PartSpec("skills", "skills.enabled", _build_skills, ("skills",)),
    PartSpec(
        "scheduler", "scheduler.enabled", _build_scheduler, ("schedules",),
        start=lambda s: s.start(), close=lambda s: s.shutdown(),
    ),
)  # fmt: skip
CORE_ROUTERS = ("health", "models", "chat", "conversations")


def disabled_message(name: str) -> str:
    spec = next(s for s in PARTS if s.name == name)
    section = spec.setting.split(".")[0]
    hint = " (and skills.enabled = true)" if name == "scheduler" else ""
    return f"{name} is turned off in config: set [{section}] enabled = true{hint} and restart the daemon"


def build_llm(settings: Settings) -> LLMBackend:
    if settings.model.backend == "openai":
        from assistant.llm.remote import RemoteBackend

        return RemoteBackend.from_settings(settings.model)
    from assistant.llm.llama import LlamaBackend
    from assistant.llm.model_file import resolve_model_path

    return LlamaBackend.load(resolve_model_path(settings), settings.model)


def build_recorder(settings: Settings) -> Recorder:
    """A recorder with this daemon's own Prometheus registry (server.metrics), reading the process's PSS and
    the generation queue at each scrape; parts add their own gauges as they are built."""
    if not settings.server.metrics:
        return NULL_RECORDER
    from prometheus_client import CollectorRegistry

    from assistant.core.metrics import PrometheusRecorder
    from assistant.core.procmem import memory_info

    recorder = PrometheusRecorder(CollectorRegistry())
    recorder.watch("assistant_process_pss_bytes", "proportional set size of the daemon", lambda: memory_info()["pss"])
    return recorder


def build_services(settings: Settings, *, clock: Clock | None = None, llm: LLMBackend | None = None) -> Services:
    """Build the real services. ``llm`` may be given (tests, benchmarks) to skip loading a model."""
    clock = clock or SystemClock()
    private_dir(settings.data_dir)
    llm = llm or build_llm(settings)
    recorder = build_recorder(settings)
    server, idle = settings.server, settings.model.prompt_cache_idle_s
    worker = GenerationWorker(
        llm, server.queue_size, server.retry_after, recorder, stream_interval=server.stream_interval_ms / 1000,
        idle_tick=min(60.0, idle / 2) if idle > 0 else None,
    )  # fmt: skip
    with opening_store(settings.data_dir / "conversations.sqlite3"):  # damage: one message naming the file
        conversations = ConversationStore(settings.data_dir / "conversations.sqlite3")
    personas = PersonaBook.from_config(settings.personas)
    chat = ChatService(worker, conversations, clock, personas=personas, rules=ChatRules(personas))
    services = Services(settings, clock, llm, worker, conversations, chat, recorder=recorder)
    recorder.watch("assistant_queue_waiting", "generation requests waiting for the model", lambda: worker.waiting)
    recorder.watch("assistant_generation_busy", "1 while the model generates", lambda: float(worker.busy))
    for spec in PARTS:
        if spec.enabled(settings):
            setattr(services, spec.name, spec.build(services))
    return services
