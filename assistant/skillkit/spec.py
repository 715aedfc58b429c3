"""``SkillSpec``: a skill as the registry sees it, the record the ``@skill`` decorator attaches to the
function (as ``__skill__``). Its parameters and phrase patterns are worked out on first use."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypedDict

from assistant.skillkit.context import SkillContext, SkillResult
from assistant.skillkit.params import ParamInfo, Signature, SkillParam, infer_signature
from assistant.skillkit.phrases import normalize_phrase, phrase_pattern, phrase_placeholders, phrase_text

SKILL_ATTR = "__skill__"

SkillFunc = Callable[..., SkillResult]
PhraseArgs = Callable[..., Mapping[str, Any] | None]


class SkillInfo(TypedDict):
    """A skill as ``/api/skills`` and ``assistant skills list`` show it (``SkillSpec.describe``)."""

    name: str
    description: str
    params: dict[str, ParamInfo]
    schedule: str | None
    origin: str
    untrusted_output: bool
    slash: str
    phrases: list[str]


@dataclass(frozen=True)
class SkillSpec:
    """A skill as the registry sees it. Parameters and phrase patterns are worked out on first use (so a
    type defined below the function in its module is found); ``check()`` does that and raises on a
    problem."""

    name: str
    description: str
    func: SkillFunc
    slash: str = ""  # the chat command without "/" (default: the name; "/<name>" always works too)
    phrases: tuple[str | re.Pattern[str], ...] = ()
    from_phrase: PhraseArgs | None = None
    schedule: str | None = None  # a suggested schedule ("every day at 8"), never added automatically
    remember: bool = True  # whether scheduled results become memories (not for ephemeral facts)
    untrusted_output: bool = True  # output derived from untrusted (fetched) text; the safe default
    origin: str = "builtin"  # "builtin" or the distribution that provided it

    @cached_property
    def signature(self) -> Signature:
        return infer_signature(self.func)

    @property
    def params(self) -> Mapping[str, SkillParam]:
        return self.signature.params

    @cached_property
    def patterns(self) -> tuple[re.Pattern[str], ...]:
        return tuple(phrase_pattern(p) for p in self.phrases)

    @property
    def command(self) -> str:
        return self.slash or self.name

    def check(self) -> None:
        """Work out the parameters and phrases now; TypeError/ValueError/NameError names the problem."""
        params = self.params
        for phrase, pattern in zip(self.phrases, self.patterns, strict=True):
            if self.from_phrase is not None:
                continue
            unknown = [g for g in pattern.groupindex if g not in params]
            if unknown:
                raise ValueError(
                    f"skill {self.name!r}: phrase {phrase_text(phrase)!r} captures {unknown[0]!r}, which is "
                    f"not a parameter (add it, or give from_phrase= to turn captured words into arguments)"
                )

    def call(self, ctx: SkillContext, args: Mapping[str, Any]) -> object:
        """Call the function; whatever it returns (the runner checks that it is a SkillResult)."""
        sig = self.signature
        if sig.context is None:
            return self.func(**args)
        if sig.context_positional:
            return self.func(ctx, **args)
        return self.func(**{sig.context: ctx}, **args)

    def phrase_args(self, text: str) -> dict[str, Any] | None:
        """The arguments when ``text`` is one of this skill's phrases, else None. The text should already
        be free of greetings and politeness words; case, spacing and end punctuation do not matter."""
        text = normalize_phrase(text)
        for pattern in self.patterns:
            m = pattern.fullmatch(text)
            if m is None:
                continue
            captured = {k: v for k, v in m.groupdict().items() if v is not None}
            if not captured:
                return {}
            if self.from_phrase is None:
                return captured
            args = self.from_phrase(**captured)
            if args is not None:
                return dict(args)
        return None

    def literal_phrases(self) -> list[str]:
        """The phrases without captures: fixed commands, fit for a closed speech grammar."""
        return [p for p in self.phrases if isinstance(p, str) and not phrase_placeholders(p)]

    def describe(self) -> SkillInfo:
        return {
            "name": self.name,
            "description": self.description,
            "params": {k: p.describe() for k, p in self.params.items()},
            "schedule": self.schedule,
            "origin": self.origin,
            "untrusted_output": self.untrusted_output,
            "slash": f"/{self.command}",
            "phrases": [phrase_text(p) for p in self.phrases if isinstance(p, str)],
        }
