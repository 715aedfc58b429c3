"""Personas: a named system prompt and sampling settings, chosen per conversation.

A persona changes the tone only. Its system prompt takes the place of the default system prompt; the
recall blocks (with the rules for untrusted data), the quoting of untrusted history turns, skill shortcuts
and the rules layer are the same whatever the persona, so the facts a skill computes and the handling of
untrusted text never depend on it.

Three are built in (``helpful``, the default; ``terse``; ``grumpy``). ``[personas.NAME]`` tables in the
config add more, or change a built-in one field by field.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from assistant.core.errors import BadRequest, ConfigError
from assistant.llm.types import GenerationParams

DEFAULT_PERSONA = "helpful"

# Sampling fields a persona may set; a request that names one itself keeps its own value.
SAMPLING_FIELDS = ("temperature", "top_p", "max_tokens")


@dataclass(frozen=True)
class Persona:
    name: str
    system_prompt: str
    description: str = ""
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None

    def params(self, params: GenerationParams, explicit: Collection[str] = ()) -> GenerationParams:
        """``params`` with this persona's sampling settings, except the fields the request set itself."""
        changes: dict[str, Any] = {
            f: getattr(self, f) for f in SAMPLING_FIELDS if getattr(self, f) is not None and f not in explicit
        }
        return replace(params, **changes) if changes else params

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "system_prompt": self.system_prompt,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
        }


BUILT_IN: tuple[Persona, ...] = (
    Persona(
        DEFAULT_PERSONA,
        # Tuned on the dev split of `assistant eval everyday` for qwen0.5b (issue 22): starting with the answer
        # keeps it inside a short reply instead of behind a worked derivation ("To determine how many slices
        # are left, we need to follow these steps: ..."); asking for the bare answer only ("reply with just
        # the number") made the 0.5B model guess ("A spider has 1 legs").
        "You are a helpful personal assistant running privately on the user's own device. Answer briefly and "
        "plainly, in one or two short sentences, and start with the answer itself.",
        "plain and helpful (the default)",
    ),
    Persona(
        "terse",
        "You are a personal assistant running privately on the user's own device. Answer in as few words "
        "as possible: one short sentence, no greetings, no filler.",
        "as few words as possible",
        temperature=0.3,
        max_tokens=128,
    ),
    Persona(
        "grumpy",
        "You are a personal assistant running privately on the user's own device, with the manner of a "
        "grumpy old forum regular: you sigh, grumble about the question and mutter that it was answered "
        "before, but you stay civil, never insult the user, and still give the correct answer briefly.",
        "a grumpy forum regular who stays civil",
        temperature=0.8,
    ),
)


def zone_name(now: datetime) -> str:
    """The IANA name of ``now``'s zone ("Europe/Berlin"), else its abbreviation or UTC offset."""
    tz = now.tzinfo
    key = getattr(tz, "key", None)
    if isinstance(key, str) and key:
        return key
    return now.tzname() or now.strftime("UTC%z")


def _day(when: datetime) -> str:
    return f"{when:%A} {when.day} {when:%B}"


def calendar_line(now: datetime) -> str:
    """Today (weekday, date, ISO date, the user's zone), yesterday and the next seven days, from the clock:
    the small default model cannot count days itself ("Which day comes after Tuesday?" "Tuesday comes after
    Monday."), so the calendar it needs is written out, as a skill writes out the facts it states."""
    week = "; ".join(_day(now + timedelta(days=n)) for n in range(1, 8))
    return (
        f"Calendar: today is {now:%A}, {now.day} {now:%B %Y} ({now:%Y-%m-%d}), time zone {zone_name(now)}. "
        f"Yesterday was {_day(now - timedelta(days=1))}. The next seven days: {week}."
    )


def dated_system_prompt(text: str, now: datetime) -> str:
    """``text`` with the calendar (``calendar_line``: today's date and weekday, the user's zone, the days
    around it) in front. ``now`` is the user's aware local time. No time of day: the system prompt stays the
    same bytes all day, so llama.cpp's prompt cache holds; the time goes into the newest user message
    (``time_note``). The calendar goes first and the persona's words last, nearest the conversation: after the
    persona's words, the zone name leaked into answers ("There are 5 continents in Europe/Berlin.")."""
    return f"{calendar_line(now)}\n\n{text}"


def time_note(now: datetime) -> str:
    """The user's local time as one short line, for the front of the newest user message (which changes
    every turn anyway, so the prompt cache loses nothing)."""
    return f"(The time now is {now:%H:%M} on {now:%A}, {now.day} {now:%B %Y}.)"


class PersonaBook:
    """The personas the daemon knows: the built-in ones merged with the config's."""

    def __init__(self, personas: Iterable[Persona] = BUILT_IN, default: str = DEFAULT_PERSONA) -> None:
        self._by_name = {p.name: p for p in personas}
        if default not in self._by_name:
            raise ValueError(f"the default persona {default!r} is not among {self.names()}")
        self.default = default

    @classmethod
    def from_config(cls, configured: Mapping[str, Any]) -> PersonaBook:
        """Built-ins plus ``[personas.NAME]`` tables (objects with the fields of ``Persona`` but ``name``;
        None or a missing field keeps the built-in's value, and a new persona needs a system prompt)."""
        merged = {p.name: p for p in BUILT_IN}
        for name, table in configured.items():
            fields = table if isinstance(table, Mapping) else table.model_dump()
            given = {k: v for k, v in fields.items() if v is not None}
            base = merged.get(name)
            if base is None:
                if not given.get("system_prompt"):
                    raise ConfigError(f"personas.{name}: a new persona needs a system_prompt")
                merged[name] = Persona(name, **given)
            else:
                merged[name] = replace(base, **given)
        return cls(merged.values())

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def get(self, name: str | None) -> Persona:
        """The persona called ``name`` (the default for None), or a 400 naming the known ones."""
        if name is None:
            return self._by_name[self.default]
        persona = self._by_name.get(name)
        if persona is None:
            raise BadRequest(
                f"unknown persona {name!r}; known personas: {', '.join(self.names())}", code="unknown_persona"
            )
        return persona

    def all(self) -> list[Persona]:
        return [self._by_name[n] for n in self.names()]
