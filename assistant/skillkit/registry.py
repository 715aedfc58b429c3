"""Finding skills (built-ins in ``skills/``, third-party ones via the ``assistant.skills`` entry point
group) and running them with a ``SkillContext`` built from the services."""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import Any

from pydantic import ValidationError, create_model

from assistant.core.errors import AssistantError, BadRequest, NotFound, QueueFull
from assistant.skillkit.api import SKILL_ATTR, SkillContext, SkillResult, SkillSpec
from assistant.core.localtime import get_zone

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "assistant.skills"
BUILTIN_PACKAGE = "skills"


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
    """Skills by name. ``errors`` lists plugins that could not be loaded (shown, never fatal)."""

    def __init__(self, specs: Iterable[SkillSpec] = ()) -> None:
        self._specs: dict[str, SkillSpec] = {}
        self.errors: list[str] = []
        for spec in specs:
            self.add(spec)

    def add(self, spec: SkillSpec) -> None:
        if spec.name in self._specs:
            other = self._specs[spec.name]
            self.errors.append(
                f"skill {spec.name!r} from {spec.origin} ignored: {other.origin} has that name"
            )
            return
        self._specs[spec.name] = spec

    @classmethod
    def discover(
        cls, *, builtin_package: str | None = BUILTIN_PACKAGE, group: str | None = ENTRY_POINT_GROUP
    ) -> SkillRegistry:
        registry = cls()
        if builtin_package:
            registry._load_builtins(builtin_package)
        if group:
            registry._load_entry_points(group)
        for err in registry.errors:
            log.warning("%s", err)
        return registry

    def _load_builtins(self, package: str) -> None:
        pkg = importlib.import_module(package)
        for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
            if info.name.startswith("_"):
                continue
            try:
                module = importlib.import_module(f"{package}.{info.name}")
            except Exception as exc:  # noqa: BLE001 - one broken skill must not take the others down
                self.errors.append(f"built-in skill module {info.name!r} failed to import: {exc}")
                continue
            for spec in specs_in(module):
                self.add(spec)

    def _load_entry_points(self, group: str) -> None:
        for ep in sorted(importlib.metadata.entry_points(group=group), key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            origin = f"{dist.name} {dist.version}" if dist is not None else ep.value
            try:
                obj = ep.load()
            except Exception as exc:  # noqa: BLE001 - a broken plugin is reported, not fatal
                self.errors.append(f"skill entry point {ep.name!r} ({ep.value}) failed to load: {exc}")
                continue
            specs = specs_in(obj)
            if not specs:
                self.errors.append(f"skill entry point {ep.name!r} ({ep.value}) holds no @skill function")
            for spec in specs:
                self.add(_with_origin(spec, origin))

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

    def describe(self) -> list[dict[str, Any]]:
        return [self._specs[n].describe() for n in self.names()]


def _with_origin(spec: SkillSpec, origin: str) -> SkillSpec:
    from dataclasses import replace

    return replace(spec, origin=origin)


def parse_args(spec: SkillSpec, raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check and convert arguments (text from the CLI or chat, JSON from the API) to the declared types."""
    raw = dict(raw or {})
    unknown = sorted(set(raw) - set(spec.params))
    if unknown:
        allowed = ", ".join(sorted(spec.params)) or "none"
        raise BadRequest(
            f"skill {spec.name!r} has no parameter {unknown[0]!r} (parameters: {allowed})",
            code="bad_skill_args",
        )
    fields: dict[str, Any] = {}
    for key, p in spec.params.items():
        typ = p.type if p.default is not None or p.required else p.type | None
        fields[key] = (typ, ...) if p.required else (typ, p.default)
    model = create_model(f"{spec.name}_args", **fields)
    try:
        return model(**raw).model_dump()
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise BadRequest(f"skill {spec.name!r} argument {key}: {err['msg']}", code="bad_skill_args") from None


class SkillRunner:
    """Runs skills with the services of one daemon. ``services`` is read at run time, so parts added
    after building (feeds, notifier) are seen."""

    def __init__(self, registry: SkillRegistry, services: Any) -> None:
        self.registry = registry
        self.services = services

    def context(
        self, args: dict[str, Any], *, timezone: str | None = None, trigger: str = "manual"
    ) -> SkillContext:
        s = self.services
        zone = get_zone(timezone or s.settings.timezone)
        return SkillContext(
            clock=s.clock,
            settings=s.settings,
            worker=s.worker,
            memory=s.memory,
            feeds=s.feeds,
            notifier=s.notifier,
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
        ctx = self.context(parse_args(spec, args), timezone=timezone, trigger=trigger)
        try:
            result = spec.func(ctx)
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


def build_skills(services: Any) -> SkillRunner:
    return SkillRunner(SkillRegistry.discover(), services)
