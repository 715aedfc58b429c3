"""What a skill author sees: the ``@skill`` decorator, ``Param``, ``SkillContext`` and ``SkillResult``.

A skill is one decorated function taking a ``SkillContext`` and returning a ``SkillResult``::

    @skill("time", "Tell the current local time", params={"tz": Param(str, None, "IANA zone")})
    def tell_time(ctx: SkillContext) -> SkillResult: ...

The decorator registers nothing globally: it attaches a ``SkillSpec`` to the function as ``__skill__``;
``assistant.skillkit.registry`` finds decorated functions in the built-in ``skills`` package and in
packages that declare an ``assistant.skills`` entry point.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Protocol

from assistant.core.clock import Clock
from assistant.llm.types import ChatMessage, Completion, GenerationParams

SKILL_ATTR = "__skill__"


class TextGenerator(Protocol):
    """The part of ``assistant.llm.worker.GenerationWorker`` a skill may use (blocking, from a thread)."""

    def generate_text(self, messages: list[ChatMessage], params: GenerationParams) -> Completion: ...


@dataclass(frozen=True)
class Param:
    """One skill parameter. Values given as text (CLI, chat) are converted to ``type`` by pydantic."""

    type: type = str
    default: Any = None
    description: str = ""
    required: bool = False


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
    """The services a skill may use. Optional parts are None when the daemon runs without them."""

    clock: Clock
    settings: Any  # assistant.config.Settings
    worker: TextGenerator | None = None
    memory: Any | None = None
    feeds: Any | None = None
    notifier: Any | None = None
    args: dict[str, Any] = field(default_factory=dict)
    timezone: tzinfo | None = None  # the zone of the schedule (or the user's zone) for local times
    trigger: str = "manual"  # "manual", "chat", "api" or "schedule:<id>"

    def local_now(self) -> datetime:
        now = self.clock.now()
        return now.astimezone(self.timezone) if self.timezone is not None else now


SkillFunc = Callable[[SkillContext], SkillResult]


@dataclass(frozen=True)
class SkillSpec:
    name: str
    description: str
    func: SkillFunc
    params: Mapping[str, Param] = field(default_factory=dict)
    schedule: str | None = None  # a suggested schedule ("every day at 8"), never added automatically
    remember: bool = True  # whether scheduled results become memories (not for ephemeral facts)
    origin: str = "builtin"  # "builtin" or the distribution that provided it

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "params": {
                k: {
                    "type": p.type.__name__,
                    "default": p.default,
                    "description": p.description,
                    "required": p.required,
                }
                for k, p in self.params.items()
            },
            "schedule": self.schedule,
            "origin": self.origin,
        }


def skill(
    name: str,
    description: str,
    *,
    params: Mapping[str, Param] | None = None,
    schedule: str | None = None,
    remember: bool = True,
) -> Callable[[SkillFunc], SkillFunc]:
    """Mark ``func`` as a skill. ``name`` is what users type (``/name``, ``assistant skills run name``)."""
    if not name or not name.replace("_", "").replace("-", "").isalnum() or not name.islower():
        raise ValueError(f"skill name {name!r} must be lowercase letters, digits, '-' or '_'")

    def decorate(func: SkillFunc) -> SkillFunc:
        spec = SkillSpec(name, description, func, dict(params or {}), schedule, remember)
        setattr(func, SKILL_ATTR, spec)
        return func

    return decorate
