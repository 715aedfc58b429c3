"""What a skill author sees: the ``@skill`` decorator, ``SkillContext``, ``SkillResult`` and the small
protocols for the services a skill may use. Import them from here; the machinery behind them lives in
``context.py`` (what a skill receives and returns), ``params.py`` (parameters from the signature),
``docstrings.py``, ``phrases.py`` and ``spec.py`` (the ``SkillSpec`` the decorator attaches).

A skill is one decorated function. Its parameters are read from its signature, the way a tool schema is
read from a Python function: type hints give the types, defaults the defaults, ``Literal[...]`` or an
``Enum`` the choices, ``Annotated[int, Field(ge=1, le=10)]`` the ranges, and ``Annotated[str, "..."]`` or
the docstring's ``Args:`` section the descriptions. The docstring's summary is the skill's description::

    @skill("time", phrases=["what time is it", "what time is it in {place}"], from_phrase=zone_for)
    def tell_time(ctx: SkillContext, tz: Annotated[str | None, "IANA zone"] = None, phrase: bool = True
                  ) -> SkillResult:
        \"\"\"Tell the current local time.\"\"\"

The parameter annotated ``SkillContext`` receives the context; every other parameter is an argument that
users give as ``/time tz=Asia/Tokyo``, ``--arg tz=...`` or JSON, converted and checked by pydantic.

``untrusted_output`` says whether the skill's output is derived from untrusted text (feed items, web
pages, anything fetched). It is True unless a skill declares otherwise: a plugin that says nothing is
treated as untrusted, which is the safe side. Untrusted output is stored in memory with provenance
``untrusted`` (scheduled results, chat answers, whatever the skill itself stores through ``ctx.memory``)
and is only ever put into a later prompt as quoted data. Only a skill built from the user's own input and
code (``time``) should declare ``untrusted_output=False``.

``phrases`` are what users say or type to run the skill without a slash (chat shortcuts and the voice
grammar use them); ``{name}`` in a phrase captures words, passed as the argument of that name or, when the
skill gives ``from_phrase``, to that function, which turns them into arguments (or None: not for me).

The decorator registers nothing globally: it attaches a ``SkillSpec`` to the function as ``__skill__``;
``assistant.skillkit.registry`` finds decorated functions through the ``assistant.skills`` entry points
(this distribution's built-ins and third-party packages alike).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from assistant.skillkit.context import (
    FeedReader,
    MemoryWriter,
    NotificationSink,
    PageReader,
    SkillContext,
    SkillResult,
    TextGenerator,
)
from assistant.skillkit.docstrings import docstring_summary
from assistant.skillkit.phrases import phrase_pattern, phrase_text
from assistant.skillkit.spec import SKILL_ATTR, PhraseArgs, SkillSpec

__all__ = [
    "FeedReader",
    "MemoryWriter",
    "NotificationSink",
    "PageReader",
    "SkillContext",
    "SkillResult",
    "TextGenerator",
    "skill",
]

_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
F = TypeVar("F", bound=Callable[..., Any])


def skill(
    name: str | None = None,
    description: str | None = None,
    *,
    slash: str | None = None,
    phrases: Sequence[str | re.Pattern[str]] = (),
    from_phrase: PhraseArgs | None = None,
    schedule: str | None = None,
    remember: bool = True,
    untrusted_output: bool = True,
) -> Callable[[F], F]:
    """Mark a function as a skill.

    Args:
        name: what users type (``/name``, ``assistant skills run name``); default: the function's name.
        description: default: the docstring's summary (its first paragraph).
        slash: another chat command for it (``/name`` keeps working).
        phrases: what users say or type to run it without a slash; ``{param}`` captures an argument,
            a compiled regex with named groups is matched as it is (chat only).
        from_phrase: called with the captured words as keyword arguments; returns the arguments, or
            None when the words are not for this skill (the model answers instead).
        schedule: a suggested schedule shown to users; nothing is scheduled by itself.
        remember: whether scheduled results become memories.
        untrusted_output: whether the output is derived from untrusted text (feeds, web pages). True
            unless declared False: such output is stored with provenance "untrusted" and only ever
            recalled into a prompt as quoted data. Declare False only for output made from the user's
            own input and code.
    """
    for label, value in (("name", name), ("slash", slash)):
        if value is not None and not _NAME.match(value):
            raise ValueError(f"skill {label} {value!r} must be lowercase letters, digits, '-' or '_'")
    if isinstance(phrases, str | re.Pattern):
        raise TypeError("phrases must be a list of phrases, not one phrase")
    for phrase in phrases:
        if not isinstance(phrase, str | re.Pattern) or not phrase_text(phrase).strip():
            raise TypeError(f"phrase {phrase!r} must be non-empty text or a compiled regex")
        if isinstance(phrase, str):
            phrase_pattern(phrase)  # a repeated {name} is an error now, not at the first chat message

    def decorate(func: F) -> F:
        skill_name = name or func.__name__.lower()
        if not _NAME.match(skill_name):
            raise ValueError(f"skill name {skill_name!r} must be lowercase letters, digits, '-' or '_'")
        summary = description if description is not None else docstring_summary(inspect.getdoc(func) or "")
        spec = SkillSpec(
            name=skill_name,
            description=summary,
            func=func,
            slash=slash or "",
            phrases=tuple(phrases),
            from_phrase=from_phrase,
            schedule=schedule,
            remember=remember,
            untrusted_output=untrusted_output,
        )
        try:
            spec.check()  # mistakes show at import; a type defined further down is looked up later
        except NameError:
            pass
        setattr(func, SKILL_ATTR, spec)
        return func

    return decorate
