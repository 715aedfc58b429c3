"""The one composition root: every part of the daemon is built here, whole, in dependency order.

``build_services(settings)`` builds the core (model, worker, conversations) and each optional part whose
config section has ``enabled = true`` (memory, notifier, feeds, pages, skills, scheduler), each with its
collaborators passed to its constructor; the chat orchestrator comes last, with the parts it uses. A part
that is turned off is ``None`` on ``Services`` and its routes answer 503 with a message naming the setting
that turns it on (``PARTS``). ``Services.start``/``close`` start the parts in the order of ``PARTS`` and
close them in reverse (the scheduler stops before the notifier and memory it uses are closed).

The seams tests, evaluations and benchmarks need are arguments of ``build_services`` (the clock, the
model, the embedder, the feed service, the notifier, the skill registry); nothing is assigned afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from assistant.chat.conversations import ConversationStore
from assistant.chat.orchestrator import ChatService, MemoryHook
from assistant.chat.personas import PersonaBook
from assistant.chat.rules import ChatRules
from assistant.config import Settings
from assistant.core.clock import Clock, SystemClock
from assistant.core.errors import PartDisabled
from assistant.core.localtime import get_zone
from assistant.core.metrics import NULL_RECORDER, Recorder
from assistant.core.sqlite_db import private_dir
from assistant.core.storage_errors import opening_store
from assistant.llm.types import LLMBackend
from assistant.llm.worker import GenerationWorker

if TYPE_CHECKING:
    from assistant.feeds.service import FeedService
    from assistant.notify.service import Notifier
    from assistant.pages.service import PageService
    from assistant.reminders.service import ReminderService
    from assistant.skillkit.registry import SkillRegistry, SkillRunner
    from assistant.skillkit.scheduler import SkillScheduler
    from memory.embedder import Embedder
    from memory.service import MemoryService

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
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
    reminders: ReminderService | None = None
    recorder: Recorder = NULL_RECORDER  # what /metrics renders (server.metrics)

    def require(self, name: str, part: T | None) -> T:
        """``part`` itself, or PartDisabled naming the setting that turns ``name`` on."""
        if part is None:
            raise PartDisabled(disabled_message(name))
        return part

    def start(self) -> None:
        self.worker.start()
        from assistant.chat.prompt_warmup import start_warmup

        start_warmup(self.llm, self.chat)  # the default persona's prompt, from disk or evaluated once
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
    """One optional part: the ``Services`` attribute it fills, the setting that turns it on, and how it
    starts and stops."""

    name: str
    setting: str  # the dotted config key, e.g. "memory.enabled"
    start: Callable[[Any], None] | None = None
    close: Callable[[Any], None] | None = None

    def enabled(self, settings: Settings) -> bool:
        section, key = self.setting.split(".")
        return bool(getattr(getattr(settings, section), key))


PARTS: tuple[PartSpec, ...] = (
    PartSpec("memory", "memory.enabled", start=lambda m: m.warm_up(), close=lambda m: m.close()),
    PartSpec("notifier", "notify.enabled", start=lambda n: n.start(), close=lambda n: n.close()),
    PartSpec("feeds", "feeds.enabled", close=lambda f: f.close()),
    PartSpec("pages", "pages.enabled", close=lambda p: p.close()),
    PartSpec("skills", "skills.enabled"),
    PartSpec("scheduler", "scheduler.enabled", start=lambda s: s.start(), close=lambda s: s.shutdown()),
    PartSpec("reminders", "reminders.enabled", start=lambda r: r.start(), close=lambda r: r.close()),
)
_SPECS = {spec.name: spec for spec in PARTS}


def disabled_message(name: str) -> str:
    spec = _SPECS[name]
    section = spec.setting.split(".")[0]
    hint = {"scheduler": " (and skills.enabled = true)", "reminders": " (and notify.enabled = true)"}.get(name, "")
    return f"{name} is turned off in config: set [{section}] enabled = true{hint} and restart the daemon"


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


def _on(settings: Settings, name: str) -> bool:
    return _SPECS[name].enabled(settings)


def build_services(
    settings: Settings,
    *,
    clock: Clock | None = None,
    llm: LLMBackend | None = None,
    embedder: Embedder | None = None,
    feeds: FeedService | None = None,
    notifier: Notifier | None = None,
    skill_registry: SkillRegistry | None = None,
    recall: MemoryHook | None = None,
) -> Services:
    """Build the real services, each part whole. The keyword arguments replace one real part (tests,
    evaluations, benchmarks): ``llm`` skips loading a model, ``embedder`` is memory's embedder, ``feeds`` and
    ``notifier`` are those parts (whatever their setting says), ``skill_registry`` replaces the installed
    skills, ``recall`` the chat's recall from memory (a fixed recall, for tests of what the prompt shows)."""
    clock = clock or SystemClock()
    private_dir(settings.data_dir)
    if llm is None:
        from assistant.llm.backends import build_llm  # the backend plugin model.backend names

        llm = build_llm(settings)
    recorder = build_recorder(settings)
    server, idle = settings.server, settings.model.prompt_cache_idle_s
    worker = GenerationWorker(
        llm, server.queue_size, server.retry_after, recorder, stream_interval=server.stream_interval_ms / 1000,
        idle_tick=min(60.0, idle / 2) if idle > 0 else None,
    )  # fmt: skip
    recorder.watch("assistant_queue_waiting", "generation requests waiting for the model", lambda: worker.waiting)
    recorder.watch("assistant_generation_busy", "1 while the model generates", lambda: float(worker.busy))
    with opening_store(settings.data_dir / "conversations.sqlite3"):  # damage: one message naming the file
        conversations = ConversationStore(settings.data_dir / "conversations.sqlite3")

    memory = _build_memory(settings, clock, embedder, recorder) if _on(settings, "memory") else None
    if notifier is None and _on(settings, "notifier"):
        notifier = _build_notifier(settings, clock, recorder)
    if feeds is None and _on(settings, "feeds"):
        feeds = _build_feeds(settings, clock)
    pages = _build_pages(settings, worker, llm) if _on(settings, "pages") else None
    skills = scheduler = None
    if _on(settings, "skills"):
        from assistant.skillkit.registry import SkillParts, build_skills

        parts = SkillParts(settings, clock, worker, memory, feeds, notifier, pages)
        skills = build_skills(parts, skill_registry)
        if _on(settings, "scheduler"):
            from assistant.skillkit.scheduler import build_scheduler

            scheduler = build_scheduler(settings, skills, recorder=recorder)
    elif _on(settings, "scheduler"):
        log.warning("the scheduler is off because skills are turned off (skills.enabled = false)")

    reminders = None
    if _on(settings, "reminders") and notifier is not None:
        from assistant.reminders.service import build_reminders

        reminders = build_reminders(settings, clock, notifier, memory)
    elif _on(settings, "reminders"):
        log.warning("reminders are off because notifications are turned off (notify.enabled = false)")

    chat = _build_chat(settings, worker, conversations, clock, memory, skills, reminders, recall)
    return Services(
        settings, clock, llm, worker, conversations, chat,
        memory=memory, notifier=notifier, feeds=feeds, pages=pages, skills=skills, scheduler=scheduler,
        reminders=reminders, recorder=recorder,
    )  # fmt: skip


def _build_memory(settings: Settings, clock: Clock, embedder: Embedder | None, recorder: Recorder) -> MemoryService:
    from memory.opening import build_memory

    memory = build_memory(settings, clock, embedder=embedder, recorder=recorder)
    recorder.watch("assistant_memories", "memories stored", memory.count)
    return memory


def _build_notifier(settings: Settings, clock: Clock, recorder: Recorder) -> Notifier:
    from assistant.notify.service import build_notifier

    return build_notifier(settings, clock, recorder=recorder)


def _build_feeds(settings: Settings, clock: Clock) -> FeedService:
    from assistant.feeds.service import build_feeds

    return build_feeds(settings, clock)


def _build_pages(settings: Settings, worker: GenerationWorker, llm: LLMBackend) -> PageService:
    from assistant.pages.service import build_pages

    return build_pages(settings, worker.generate_text, llm)


def _recall_budget(settings: Settings, worker: GenerationWorker) -> Callable[[], int] | None:
    """Recall's token budget from the model's measured prompt speed (assistant.llm.prefill_meter), for a
    backend that measures it (the local llama.cpp one); None keeps ``memory.recall_token_budget`` fixed."""
    meter = getattr(worker.backend, "prefill_meter", None)
    if meter is None or settings.memory.recall_seconds <= 0:
        return None
    from assistant.llm.prefill_meter import recall_budget

    ceiling, seconds = settings.memory.recall_token_budget, settings.memory.recall_seconds
    return lambda: recall_budget(meter, ceiling=ceiling, seconds=seconds)


def _build_chat(
    settings: Settings,
    worker: GenerationWorker,
    conversations: ConversationStore,
    clock: Clock,
    memory: MemoryService | None,
    skills: SkillRunner | None,
    reminders: ReminderService | None = None,
    recall: MemoryHook | None = None,
) -> ChatService:
    """The orchestrator with the parts it uses: recall and ratings from memory, rules, skill shortcuts."""
    personas = PersonaBook.from_config(settings.personas)
    feedback = shortcuts = None
    if memory is not None:
        from memory.recall import build_recall

        feedback = memory.feedback
        recall = recall or build_recall(memory, settings, _recall_budget(settings, worker))  # a given one wins
    if skills is not None:
        from assistant.skillkit.shortcuts import SkillShortcuts

        shortcuts = SkillShortcuts(skills)
    said = None
    if reminders is not None:
        from assistant.reminders.chat import ReminderChat

        said = ReminderChat(reminders)
    rules = ChatRules(personas, memory, reminders=said)
    choice = None
    if settings.skills.choice is not False and (skills is not None or recall is not None or said is not None):
        from assistant.skillkit.skill_choice import build_skill_choice, choice_enabled

        def note(text: str, conversation_id: str) -> str | None:
            said_back = rules.answer(text, conversation_id=conversation_id, persona=personas.default)
            return said_back.text if said_back is not None else None

        choice = None if not choice_enabled(settings.skills.choice, worker.backend.name) else build_skill_choice(
            worker.generate_text, skills=skills, memory=recall is not None,
            remind=(lambda text, cid: said.answer(text, conversation_id=cid)) if said is not None else None,
            note=note if memory is not None else None,
        )  # fmt: skip
    return ChatService(
        worker, conversations, clock, personas=personas, memory=recall, shortcuts=shortcuts,
        rules=rules, feedback=feedback, skill_choice=choice, zone=get_zone(settings.timezone),
    )  # fmt: skip
