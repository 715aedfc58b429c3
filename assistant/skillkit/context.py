"""What a skill receives and returns: ``SkillContext`` (the services a skill may use, as small protocols of
their own) and ``SkillResult``. Skill authors import these from ``assistant.skillkit.api``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any, Protocol

from assistant.core.clock import Clock
from assistant.llm.types import ChatMessage, Completion, GenerationParams

if TYPE_CHECKING:
    from assistant.config import Settings
    from assistant.feeds.models import FeedEntry
    from assistant.notify.models import Notification
    from assistant.pages.models import PageSummary, Style


# --- what a skill may use ------------------------------------------------------------------------------


class TextGenerator(Protocol):
    """The part of ``assistant.llm.worker.GenerationWorker`` a skill may use (blocking, from a thread)."""

    def generate_text(self, messages: list[ChatMessage], params: GenerationParams) -> Completion: ...


class OneOffPrompts:
    """The generator a skill gets: its prompts are never continued by a later request, so their states are
    not kept in the model's RAM cache of prompt states (each scheduled run would add one)."""

    def __init__(self, worker: TextGenerator) -> None:
        self.worker = worker

    def generate_text(self, messages: list[ChatMessage], params: GenerationParams) -> Completion:
        return self.worker.generate_text(messages, dataclasses.replace(params, save_state=False))


class FeedReader(Protocol):
    """The part of ``assistant.feeds.service.FeedService`` a skill may use."""

    def latest_entries(self, limit: int = 10) -> list[FeedEntry]: ...

    def unreported_entries(self, consumer: str, limit: int | None = None) -> list[FeedEntry]: ...

    def mark_reported(self, consumer: str, keys: list[str]) -> None: ...


class PageReader(Protocol):
    """The part of ``assistant.pages.service.PageService`` a skill may use: fetch a page (under the feeds'
    address policy), extract its main text and summarize it with the model, in parts when it is long.
    Raises an AssistantError that says why a page cannot be summarized."""

    def summarize(
        self, url: str, style: Style = "summary", *, max_tokens: int | None = None
    ) -> PageSummary: ...


class NotificationSink(Protocol):
    """The part of ``assistant.notify.service.Notifier`` a skill may use."""

    def notify(
        self, title: str, body: str, *, source: str, urgent: bool = False, data: dict[str, Any] | None = None
    ) -> Notification: ...


class MemoryWriter(Protocol):
    """The part of ``memory.service.MemoryService`` a skill may use: storing a memory (returns its id).

    ``provenance`` is "user", "conversation" or "untrusted" (``assistant.core.recall``); None derives it
    from ``source``. A skill with untrusted output stores untrusted memories whatever it passes."""

    def add(
        self,
        text: str,
        source: str = "note",
        conversation_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        provenance: str | None = None,
    ) -> str: ...


@dataclass
class SkillResult:
    """What a skill produced. ``text`` is the whole answer; ``data`` is structured (JSON-able) detail.

    ``notify=False`` tells the scheduler there is nothing worth a notification (an empty digest).
    ``on_delivered`` runs once the result was handed over (notification outbox, HTTP answer, chat turn):
    a digest marks its items reported there, so a failed delivery does not lose them.
    """

    text: str
    title: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    urgent: bool = False
    notify: bool = True
    on_delivered: Callable[[], None] | None = field(default=None, repr=False, compare=False)


@dataclass
class SkillContext:
    """The services a skill may use. Optional parts are None when the daemon runs without them.

    ``args`` holds the same checked arguments the function receives as keyword arguments."""

    clock: Clock
    settings: Settings
    worker: TextGenerator | None = None
    memory: MemoryWriter | None = None
    feeds: FeedReader | None = None
    notifier: NotificationSink | None = None
    pages: PageReader | None = None
    args: dict[str, Any] = field(default_factory=dict)
    timezone: tzinfo | None = None  # the zone of the schedule (or the user's zone) for local times
    trigger: str = "manual"  # "manual", "chat", "api" or "schedule:<id>"

    def local_now(self) -> datetime:
        now = self.clock.now()
        return now.astimezone(self.timezone) if self.timezone is not None else now
