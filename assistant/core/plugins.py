"""One way to plug things in: entry-point groups, as simonw/llm does (and the skills did first).

Every extension point of the daemon is an entry-point group (``GROUPS``). A distribution adds to one by
naming an object in its ``pyproject.toml``::

    [project.entry-points."assistant.channels"]
    matrix = "assistant_matrix:matrix_channel"

This distribution's own parts (the webhook channel, the llama.cpp backend, the ONNX embedder, ...) are
registered the same way in its own ``pyproject.toml`` and found through the same functions: their origin is
"builtin" and they come first, so a plugin cannot take a built-in's name (a second entry point of the same
name in a group is refused, with an error saying which one kept it).

What the object behind an entry point must be is said by each group's factory protocol, next to the code
that calls it (``GROUPS`` names it; docs/plugins.md shows each with an example). Only metadata is read to
list the plugins; a plugin's module is imported when it is loaded (``load``/``load_all``), not before.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass

from assistant.core.errors import ConfigError

OWN_DISTRIBUTION = "assistant"  # its entry points are the built-ins: origin "builtin", loaded first
BUILTIN_ORIGIN = "builtin"

SKILLS = "assistant.skills"
CHANNELS = "assistant.channels"
BACKENDS = "assistant.backends"
EMBEDDERS = "assistant.embedders"
SPEECH = "assistant.speech"

# Every group, with what its entry points name (the protocol lives in the module given).
GROUPS: dict[str, str] = {
    SKILLS: "a module of @skill functions, or one (assistant.skillkit.api.skill)",
    CHANNELS: "a notification channel factory (assistant.notify.channel.ChannelFactory)",
    BACKENDS: "a model backend factory (assistant.llm.backends.BackendFactory)",
    EMBEDDERS: "a memory embedder factory (memory.embedder.EmbedderFactory)",
    SPEECH: 'a speech engine factory, named "stt.NAME" (assistant.voice.stt.SpeechToTextFactory) '
    'or "tts.NAME" (assistant.voice.tts.TextToSpeechFactory)',
}


class PluginError(ConfigError):
    """A plugin named in config is not installed, or failed to load."""

    code = "plugin"


@dataclass(frozen=True)
class Plugin:
    """One entry point of one group: what it names and which distribution registered it."""

    group: str
    name: str
    value: str  # "module" or "module:attribute"
    dist: str | None = None  # the registering distribution's name (None when unknown)
    version: str | None = None

    @property
    def builtin(self) -> bool:
        return self.dist == OWN_DISTRIBUTION

    @property
    def origin(self) -> str:
        """ "builtin", or "distribution version" for a third-party plugin."""
        if self.dist is None:
            return self.value
        return BUILTIN_ORIGIN if self.builtin else f"{self.dist} {self.version}"

    def load(self) -> object:
        """Import the module and return the object named (any exception of the import propagates)."""
        return importlib.metadata.EntryPoint(self.name, self.value, self.group).load()

    def loaded(self, setting: str) -> object:
        """As ``load``, a failure becoming a PluginError that names ``setting`` (the key that chose it)."""
        try:
            return self.load()
        except Exception as exc:  # noqa: BLE001 - whatever a broken plugin raises, say which one it is
            raise PluginError(
                f"{setting} = {self.name!r}: the plugin {self.value} ({self.origin}) failed to load: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def factory(self, setting: str) -> object:
        """As ``loaded``, checking that the object is callable (every group but skills names a factory)."""
        obj = self.loaded(setting)
        if not callable(obj):
            raise PluginError(
                f"{setting} = {self.name!r}: {self.group} entry point {self.name!r} is not callable: {obj!r}"
            )
        return obj


@dataclass(frozen=True)
class Found:
    """The plugins of a group, one per name: built-ins first, then by distribution and name.
    ``errors`` says which entry points were refused (a name already taken)."""

    plugins: tuple[Plugin, ...]
    errors: tuple[str, ...] = ()

    def names(self) -> list[str]:
        return [p.name for p in self.plugins]

    def get(self, name: str) -> Plugin | None:
        return next((p for p in self.plugins if p.name == name), None)


def _order(p: Plugin) -> tuple[bool, str, str]:
    return (not p.builtin, p.dist or "", p.name)


def find(group: str, *, unique: bool = True) -> Found:
    """Every plugin of ``group`` installed now (metadata only; nothing is imported).

    With ``unique`` a name is kept once: the first in order (a built-in before any plugin), the others are
    refused in ``errors``. The skill registry passes ``unique=False``: there the skill's own name counts.
    """
    plugins: list[Plugin] = []
    for ep in importlib.metadata.entry_points(group=group):
        dist = getattr(ep, "dist", None)
        plugins.append(
            Plugin(group, ep.name, ep.value, dist.name if dist else None, dist.version if dist else None)
        )
    plugins.sort(key=_order)
    if not unique:
        return Found(tuple(plugins))
    kept: dict[str, Plugin] = {}
    errors: list[str] = []
    for p in plugins:
        first = kept.get(p.name)
        if first is None:
            kept[p.name] = p
        elif first.value != p.value or first.origin != p.origin:
            errors.append(
                f"{group} entry point {p.name!r} ({p.value}) from {p.origin} ignored: "
                f"{first.origin} has that name"
            )
    return Found(tuple(kept.values()), tuple(errors))


def names(group: str) -> list[str]:
    """The names a setting may choose from in ``group``, in order (built-ins first)."""
    return find(group).names()


def _unknown(group: str, name: str, setting: str, known: list[str]) -> PluginError:
    shown = ", ".join(known) or "none"
    return PluginError(f"{setting} = {name!r}: no such plugin in {group} (installed: {shown})")


def load(group: str, name: str, *, setting: str) -> object:
    """The object behind plugin ``name`` of ``group``; ``setting`` is the config key that chose it, named
    in the PluginError when the plugin is not installed or fails to import."""
    return _get(group, name, setting).loaded(setting)


def load_factory(group: str, name: str, *, setting: str) -> object:
    """As ``load``, checking that the object is callable (every group but skills names a factory)."""
    return _get(group, name, setting).factory(setting)


def _get(group: str, name: str, setting: str) -> Plugin:
    found = find(group)
    plugin = found.get(name)
    if plugin is None:
        raise _unknown(group, name, setting, found.names())
    return plugin


@dataclass(frozen=True)
class Loaded:
    """What ``load_all`` found: the objects in order with their plugin, and what failed (never fatal)."""

    items: tuple[tuple[Plugin, object], ...]
    errors: tuple[str, ...]


def load_all(group: str, *, what: str, unique: bool = True) -> Loaded:
    """Load every plugin of ``group``. A plugin that fails to import, or a refused duplicate, becomes a line
    in ``errors`` (``what`` names the kind: "skill", "channel") and the others still load."""
    found = find(group, unique=unique)
    items: list[tuple[Plugin, object]] = []
    errors = list(found.errors)
    for p in found.plugins:
        try:
            obj = p.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin is reported, not fatal
            errors.append(f"{what} entry point {p.name!r} ({p.value}) failed to load: {exc}")
            continue
        items.append((p, obj))
    return Loaded(tuple(items), tuple(errors))
