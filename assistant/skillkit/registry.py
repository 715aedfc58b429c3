"""Finding skills through the ``assistant.skills`` entry point group (this distribution's built-ins in
``skills/`` and third-party packages alike) and running them with a ``SkillContext`` built from the
services."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from assistant.core import plugins
from assistant.core.clock import Clock
from assistant.core.errors import AssistantError, BadRequest, NotFound, QueueFull
from assistant.core.localtime import get_zone
from assistant.core.recall import UNTRUSTED
from assistant.skillkit.context import (
    FeedReader,
    MemoryWriter,
    NotificationSink,
    OneOffPrompts,
    PageReader,
    SkillContext,
    SkillResult,
    TextGenerator,
)
from assistant.skillkit.spec import SKILL_ATTR, SkillInfo, SkillSpec

if TYPE_CHECKING:
    from assistant.config import Settings

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = plugins.SKILLS
OWN_DISTRIBUTION = plugins.OWN_DISTRIBUTION  # its skills show as origin "builtin" and load before any plugin's
BUILTIN_ORIGIN = plugins.BUILTIN_ORIGIN


class SkillServices(Protocol):
    """The parts a ``SkillContext`` hands to skills (``SkillParts`` below, built whole by the composition
    root). Read-only, so a part may be a subtype."""

    @property
    def settings(self) -> Settings: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def worker(self) -> TextGenerator | None: ...

    @property
    def memory(self) -> MemoryWriter | None: ...

    @property
    def feeds(self) -> FeedReader | None: ...

    @property
    def notifier(self) -> NotificationSink | None: ...

    @property
    def pages(self) -> PageReader | None: ...


@dataclass(frozen=True)
class SkillParts:
    """The daemon's parts that skills use, built before the runner and handed to it whole."""

    settings: Settings
    clock: Clock
    worker: TextGenerator | None
    memory: MemoryWriter | None = None
    feeds: FeedReader | None = None
    notifier: NotificationSink | None = None
    pages: PageReader | None = None


def specs_in(obj: object) -> list[SkillSpec]:
    """The skills an object holds: a decorated function itself, or every decorated function of a module."""
    spec = getattr(obj, SKILL_ATTR, None)
    if isinstance(spec, SkillSpec):
        return [spec]
    if isinstance(obj, ModuleType):
        found = [
            getattr(v, SKILL_ATTR)
            for v in vars(obj).values()
            if isinstance(getattr(v, SKILL_ATTR, None), SkillSpec)
        ]
        return [s for s in found if getattr(s.func, "__module__", None) == obj.__name__]
    return []


class SkillRegistry:
    """Skills by name, in the order they were added (built-ins first). ``errors`` lists skills that could
    not be loaded or clash with one loaded before (shown, never fatal)."""

    def __init__(self, specs: Iterable[SkillSpec] = ()) -> None:
        self._specs: dict[str, SkillSpec] = {}
        self._commands: dict[str, str] = {}  # name or slash word -> skill name
        self.errors: list[str] = []
        for spec in specs:
            self.add(spec)

    def add(self, spec: SkillSpec) -> None:
        """Add a skill unless it is broken or its name or slash command is taken (then say why in
        ``errors``). The same function loaded twice (two metadata copies of one package) is ignored."""
        existing = self._specs.get(spec.name)
        if existing is not None and existing.func is spec.func:
            return
        try:
            spec.check()
        except (TypeError, ValueError, NameError) as exc:
            self.errors.append(f"skill {spec.name!r} from {spec.origin} ignored: {exc}")
            return
        for word in dict.fromkeys((spec.name, spec.command)):
            owner = self._commands.get(word)
            if owner is not None:
                what = "that name" if word == spec.name == owner else f"the command /{word}"
                self.errors.append(
                    f"skill {spec.name!r} from {spec.origin} ignored: {self._specs[owner].origin} has {what}"
                )
                return
        self._specs[spec.name] = spec
        for word in (spec.name, spec.command):
            self._commands[word] = spec.name

    @classmethod
    def discover(cls, *, group: str = ENTRY_POINT_GROUP) -> SkillRegistry:
        """Every skill behind the entry points of ``group``: this distribution's own first (origin
        "builtin"), then the others by distribution and entry point name."""
        registry = cls()
        registry._load_entry_points(group)
        for err in registry.errors:
            log.warning("%s", err)
        return registry

    def _load_entry_points(self, group: str) -> None:
        # The one plugin loader (assistant.core.plugins); entry point names may repeat across
        # distributions here, since a skill's own name is what must be unique (``add`` checks it).
        loaded = plugins.load_all(group, what="skill", unique=False)
        self.errors.extend(loaded.errors)
        for plugin, obj in loaded.items:
            specs = specs_in(obj)
            if not specs:
                self.errors.append(f"skill entry point {plugin.name!r} ({plugin.value}) holds no @skill function")
            for spec in specs:
                self.add(replace(spec, origin=plugin.origin))

    def specs(self) -> list[SkillSpec]:
        """The skills in the order they were added: built-ins first, so they answer a phrase first."""
        return list(self._specs.values())

    def by_command(self, word: str) -> SkillSpec | None:
        """The skill run by ``/word``: its name or its declared slash command."""
        name = self._commands.get(word)
        return self._specs[name] if name is not None else None

    def names(self) -> list[str]:
        return sorted(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def get(self, name: str) -> SkillSpec:
        try:
            return self._specs[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise NotFound(f"no skill named {name!r} (known skills: {known})", code="unknown_skill") from None

    def describe(self) -> list[SkillInfo]:
        return [self._specs[n].describe() for n in self.names()]


def parse_args(spec: SkillSpec, raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check and convert arguments (text from the CLI or chat, JSON from the API) to the types of the
    skill function's parameters; a missing argument takes the parameter's default. BadRequest
    (``bad_skill_args``) names the parameter."""
    raw = dict(raw or {})
    unknown = sorted(set(raw) - set(spec.params))
    if unknown:
        allowed = ", ".join(sorted(spec.params)) or "none"
        raise BadRequest(
            f"skill {spec.name!r} has no parameter {unknown[0]!r} (parameters: {allowed})",
            code="bad_skill_args",
        )
    out: dict[str, Any] = {}
    for key, param in spec.params.items():
        if key not in raw:
            if param.required:
                raise BadRequest(
                    f"skill {spec.name!r} argument {key}: missing (it has no default)", code="bad_skill_args"
                )
            out[key] = param.default
            continue
        try:
            out[key] = param.check(raw[key])
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join([key, *(str(p) for p in err["loc"])])
            raise BadRequest(
                f"skill {spec.name!r} argument {where}: {err['msg']}", code="bad_skill_args"
            ) from None
    return out


class UntrustedMemory:
    """``ctx.memory`` for a skill whose output is derived from untrusted text: whatever it stores is
    untrusted (taint follows derivation), whatever provenance it asks for."""

    def __init__(self, inner: MemoryWriter) -> None:
        self.inner = inner

    def add(
        self,
        text: str,
        source: str = "note",
        conversation_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        provenance: str | None = None,
    ) -> str:
        return self.inner.add(text, source, conversation_id, metadata, provenance=UNTRUSTED)


class SkillRunner:
    """Runs skills with the parts of one daemon (``SkillParts``, given whole at construction)."""

    def __init__(self, registry: SkillRegistry, services: SkillServices) -> None:
        self.registry = registry
        self.services = services

    def context(
        self,
        args: dict[str, Any],
        *,
        timezone: str | None = None,
        trigger: str = "manual",
        untrusted_output: bool = True,
    ) -> SkillContext:
        """The context a skill runs with; ``untrusted_output`` (the skill's declaration) makes whatever it
        stores in memory untrusted."""
        s = self.services
        zone = get_zone(timezone or s.settings.timezone)
        memory = s.memory
        if memory is not None and untrusted_output:
            memory = UntrustedMemory(memory)
        return SkillContext(
            clock=s.clock,
            settings=s.settings,
            worker=OneOffPrompts(s.worker) if s.worker is not None else None,
            memory=memory,
            feeds=s.feeds,
            notifier=s.notifier,
            pages=s.pages,
            args=args,
            timezone=zone,
            trigger=trigger,
        )

    def run(
        self,
        name: str,
        args: Mapping[str, Any] | None = None,
        *,
        timezone: str | None = None,
        trigger: str = "manual",
        deliver: Callable[[SkillResult], None] | None = None,
    ) -> SkillResult:
        """Run a skill now (blocking; may use the model). Bad arguments are BadRequest; a crashing skill
        is an AssistantError naming it; QueueFull (model busy) passes through.

        ``deliver`` hands the result over (the scheduler writes a notification); when it returns, the
        result's ``on_delivered`` runs (a digest marks its items reported). Without ``deliver`` the
        caller's answer is the delivery."""
        spec = self.registry.get(name)
        checked = parse_args(spec, args)
        ctx = self.context(
            dict(checked), timezone=timezone, trigger=trigger, untrusted_output=spec.untrusted_output
        )
        try:
            result = spec.call(ctx, checked)
        except (AssistantError, QueueFull):
            raise
        except Exception as exc:
            log.exception("skill %s failed", name)
            raise AssistantError(f"skill {name!r} failed: {exc}", code="skill_failed") from exc
        if not isinstance(result, SkillResult):
            raise AssistantError(
                f"skill {name!r} returned {type(result).__name__}, not a SkillResult", code="skill_failed"
            )
        if not result.title:
            result.title = name
        if deliver is not None:
            deliver(result)
        if result.on_delivered is not None:
            result.on_delivered()
        return result


def build_skills(parts: SkillServices, registry: SkillRegistry | None = None) -> SkillRunner:
    """The runner of a daemon: the installed skills (or ``registry``) with the daemon's parts."""
    return SkillRunner(registry if registry is not None else SkillRegistry.discover(), parts)
