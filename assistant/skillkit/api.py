"""What a skill author sees: the ``@skill`` decorator, ``SkillContext``, ``SkillResult`` and the small
protocols for the services a skill may use.

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

import dataclasses
import enum
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

import annotated_types
from pydantic import TypeAdapter
from pydantic.fields import FieldInfo

from assistant.core.clock import Clock
from assistant.llm.types import ChatMessage, Completion, GenerationParams

if TYPE_CHECKING:
    from assistant.config import Settings
    from assistant.feeds.models import FeedEntry
    from assistant.notify.models import Notification
    from assistant.pages.models import PageSummary, Style

SKILL_ATTR = "__skill__"
_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


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

    def summarize(self, url: str, style: Style = "summary", *, max_tokens: int | None = None) -> PageSummary: ...


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


SkillFunc = Callable[..., SkillResult]
PhraseArgs = Callable[..., Mapping[str, Any] | None]
F = TypeVar("F", bound=Callable[..., Any])


# --- parameters, inferred from the signature -----------------------------------------------------------


@dataclass(frozen=True)
class SkillParam:
    """One skill parameter, read from the function's signature. ``annotation`` is what pydantic checks a
    value against (constraints included); ``choices``/``minimum``/``maximum`` are shown to users."""

    name: str
    annotation: Any
    type_name: str
    default: Any = None
    description: str = ""
    required: bool = False
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None

    @cached_property
    def adapter(self) -> TypeAdapter[Any]:
        return TypeAdapter(self.annotation)

    def check(self, value: Any) -> Any:
        """The value converted to the parameter's type; pydantic's ValidationError when it does not fit."""
        if isinstance(value, str) and self.choices and value not in self.choices:
            by_text = {str(c).lower(): c for c in self.choices}  # "2" -> 2 for Literal[1, 2, 3]
            value = by_text.get(value.lower(), value)
        return self.adapter.validate_python(value)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.type_name,
            "default": _jsonable(self.adapter, self.default),
            "description": self.description,
            "required": self.required,
        }
        if self.choices is not None:
            out["choices"] = list(self.choices)
        if self.minimum is not None:
            out["min"] = self.minimum
        if self.maximum is not None:
            out["max"] = self.maximum
        return out


def _jsonable(adapter: TypeAdapter[Any], value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    try:
        return adapter.dump_python(value, mode="json")
    except Exception:  # noqa: BLE001 - a default pydantic cannot dump is shown as text
        return repr(value)


@dataclass(frozen=True)
class Signature:
    """What the runner needs to call a skill function: where the context goes, and the parameters."""

    context: str | None  # the name of the SkillContext parameter, None when the function takes none
    context_positional: bool
    params: dict[str, SkillParam]


def _split_annotated(hint: Any) -> tuple[Any, list[Any]]:
    if typing.get_origin(hint) is typing.Annotated:
        base, *meta = typing.get_args(hint)
        return base, meta
    return hint, []


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _without_none(hint: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); other hints unchanged. Annotated inside the union is unwrapped."""
    if not _is_union(hint):
        return hint, False
    members = [a for a in typing.get_args(hint) if a is not type(None)]
    nullable = len(members) < len(typing.get_args(hint))
    if len(members) == 1:
        return members[0], nullable
    return typing.Union[tuple(members)], nullable  # noqa: UP007 - built from a runtime tuple


def _accepts_none(hint: Any) -> bool:
    base, _ = _split_annotated(hint)
    return base is None or base is type(None) or base is Any or _without_none(base)[1]


def _is_context(hint: Any) -> bool:
    base, _ = _split_annotated(hint)
    return isinstance(base, type) and issubclass(base, SkillContext)


def _type_name(hint: Any) -> str:
    if hint is type(None):
        return "None"
    if typing.get_origin(hint) is Literal:
        kinds = {type(v).__name__ for v in typing.get_args(hint)}
        return kinds.pop() if len(kinds) == 1 else "str"
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        kinds = {type(m.value).__name__ for m in hint}
        return kinds.pop() if len(kinds) == 1 else "str"
    if _is_union(hint):
        return " | ".join(_type_name(_split_annotated(a)[0]) for a in typing.get_args(hint))
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__name__
    return str(hint).replace("typing.", "")


def _choices(hint: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(hint) is Literal:
        return tuple(typing.get_args(hint))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return tuple(m.value for m in hint)
    return None


def _bounds(meta: Sequence[Any], integer: bool) -> tuple[float | None, float | None]:
    """Inclusive bounds from ``Field(ge=..., le=...)`` or annotated_types constraints (an exclusive bound
    of an integer becomes the next integer; of a float it is enforced but not shown)."""
    lo: float | None = None
    hi: float | None = None
    flat: list[Any] = []
    for m in meta:
        if isinstance(m, FieldInfo):
            flat += m.metadata
        elif isinstance(m, annotated_types.Interval):
            flat += list(m)
        else:
            flat.append(m)
    for m in flat:
        if isinstance(m, annotated_types.Ge):
            lo = _number(m.ge)
        elif isinstance(m, annotated_types.Gt) and integer:
            lo = _number(m.gt) + 1
        elif isinstance(m, annotated_types.Le):
            hi = _number(m.le)
        elif isinstance(m, annotated_types.Lt) and integer:
            hi = _number(m.lt) - 1
    return lo, hi


def _number(bound: object) -> float:
    """A range bound as a number (annotated_types allows any comparable; skills use numbers)."""
    if isinstance(bound, int | float):
        return bound
    raise TypeError(f"a parameter range bound must be a number, not {bound!r}")


def _meta_description(meta: Sequence[Any]) -> str:
    for m in meta:
        if isinstance(m, str):
            return m.strip()
        if isinstance(m, FieldInfo) and m.description:
            return m.description.strip()
        doc = getattr(m, "documentation", None)  # typing_extensions.Doc
        if isinstance(doc, str):
            return doc.strip()
    return ""


def _param(p: inspect.Parameter, hint: Any, doc: str, where: str) -> SkillParam:
    if isinstance(p.default, FieldInfo):
        raise TypeError(
            f"{where}: parameter {p.name!r} has a pydantic Field as its default; write "
            f"Annotated[type, Field(...)] = default instead"
        )
    required = p.default is inspect.Parameter.empty
    default = None if required else p.default
    if hint is inspect.Parameter.empty:  # no annotation: the default's type, else text
        hint = type(default) if default is not None else str
    base, meta = _split_annotated(hint)
    checked = [m for m in meta if not isinstance(m, str)]
    annotation = typing.Annotated[(base, *checked)] if checked else base
    if not required and default is None and not _accepts_none(annotation):
        annotation = annotation | None  # `tz: str = None` means "optional"
    inner, _ = _without_none(base)
    inner, inner_meta = _split_annotated(inner)  # Annotated inside Optional
    integer = isinstance(inner, type) and issubclass(inner, int) and not issubclass(inner, bool)
    lo, hi = _bounds([*checked, *inner_meta], integer)
    return SkillParam(
        name=p.name,
        annotation=annotation,
        type_name=_type_name(inner),
        default=default,
        description=_meta_description(meta) or _meta_description(inner_meta) or doc,
        required=required,
        choices=_choices(inner),
        minimum=lo,
        maximum=hi,
    )


def infer_signature(func: Callable[..., Any]) -> Signature:
    """The context parameter and the skill parameters of ``func``. TypeError when the function cannot be
    called with keyword arguments (``*args``, ``**kwargs``, positional-only parameters)."""
    where = f"skill function {getattr(func, '__qualname__', func)!r}"
    sig = inspect.signature(func)
    hints = typing.get_type_hints(func, include_extras=True)
    docs = docstring_params(inspect.getdoc(func) or "")
    context: str | None = None
    context_positional = False
    params: dict[str, SkillParam] = {}
    for i, p in enumerate(sig.parameters.values()):
        hint = hints.get(p.name, inspect.Parameter.empty)
        is_ctx = _is_context(hint) or (
            hint is inspect.Parameter.empty and i == 0 and p.name in ("ctx", "context")
        )
        if is_ctx:
            if context is not None:
                raise TypeError(f"{where}: more than one SkillContext parameter")
            if p.kind is inspect.Parameter.POSITIONAL_ONLY and i != 0:
                raise TypeError(f"{where}: a positional-only SkillContext parameter must come first")
            context, context_positional = p.name, p.kind is inspect.Parameter.POSITIONAL_ONLY
            continue
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise TypeError(f"{where}: *{p.name} cannot be a skill parameter; name each parameter")
        if p.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise TypeError(f"{where}: parameter {p.name!r} is positional-only; skills get keyword arguments")
        if p.name.startswith("_"):
            raise TypeError(f"{where}: parameter names may not start with '_' ({p.name!r})")
        params[p.name] = _param(p, hint, docs.get(p.name, ""), where)
    return Signature(context, context_positional, params)


# --- docstrings ----------------------------------------------------------------------------------------

_SECTION = re.compile(r"^(?:Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments):\s*$")
_ENTRY = re.compile(r"^\*{0,2}(?P<name>[A-Za-z_]\w*)\s*(?:\([^)]*\))?\s*:\s*(?P<text>.*)$")
_SPHINX = re.compile(r"^:param\s+(?:[^:]*\s)?(?P<name>[A-Za-z_]\w*)\s*:\s*(?P<text>.*)$")


def docstring_summary(doc: str) -> str:
    """The first paragraph of a (cleaned) docstring, on one line."""
    lines: list[str] = []
    for line in doc.strip().splitlines():
        if not line.strip() or _SECTION.match(line.strip()) or line.strip().startswith(":param"):
            break
        lines.append(line.strip())
    return " ".join(lines)


def docstring_params(doc: str) -> dict[str, str]:
    """Parameter descriptions from a Google-style ``Args:`` section or Sphinx ``:param name:`` lines."""
    found: dict[str, str] = {}
    lines = doc.expandtabs().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        sphinx = _SPHINX.match(line.strip())
        if sphinx:
            found[sphinx["name"]] = sphinx["text"].strip()
        if not _SECTION.match(line.strip()):
            i += 1
            continue
        indent = len(line) - len(line.lstrip())
        current: str | None = None
        entry_indent: int | None = None
        i += 1
        while i < len(lines):
            raw = lines[i]
            depth = len(raw) - len(raw.lstrip())
            if raw.strip() and depth <= indent:
                break
            entry = _ENTRY.match(raw.strip())
            if raw.strip() and entry and (entry_indent is None or depth <= entry_indent):
                entry_indent = depth
                current = entry["name"]
                found[current] = entry["text"].strip()
            elif raw.strip() and current is not None:
                found[current] = f"{found[current]} {raw.strip()}".strip()
            i += 1
    return found


# --- phrases -------------------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*)\}")
_CAPTURE = r"\S(?:[^\n]{0,78}\S)?"


def normalize_phrase(text: str) -> str:
    """Whitespace collapsed, typographic apostrophes straightened, end punctuation dropped (case kept)."""
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    return re.sub(r"[\s?.!]+$", "", re.sub(r"\s+", " ", text).strip())


def phrase_placeholders(phrase: str) -> list[str]:
    return _PLACEHOLDER.findall(phrase)


def phrase_pattern(phrase: str | re.Pattern[str]) -> re.Pattern[str]:
    """A phrase as a regex matched against a whole (normalized) message, case-insensitively: the words
    as written, ``{name}`` capturing one to 80 characters. A compiled regex is used as it is."""
    if isinstance(phrase, re.Pattern):
        return phrase
    parts = _PLACEHOLDER.split(normalize_phrase(phrase))
    out: list[str] = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(f"(?P<{part}>{_CAPTURE})")
        else:
            out.append(r"\s+".join(re.escape(w) for w in part.split(" ")))
    return re.compile("".join(out), re.IGNORECASE)


# --- the spec ------------------------------------------------------------------------------------------


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
                    f"skill {self.name!r}: phrase {_phrase_text(phrase)!r} captures {unknown[0]!r}, which is "
                    f"not a parameter (add it, or give from_phrase= to turn captured words into arguments)"
                )

    def call(self, ctx: SkillContext, args: Mapping[str, Any]) -> Any:
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

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "params": {k: p.describe() for k, p in self.params.items()},
            "schedule": self.schedule,
            "origin": self.origin,
            "untrusted_output": self.untrusted_output,
            "slash": f"/{self.command}",
            "phrases": [_phrase_text(p) for p in self.phrases if isinstance(p, str)],
        }


def _phrase_text(phrase: str | re.Pattern[str]) -> str:
    return phrase if isinstance(phrase, str) else phrase.pattern


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
        if not isinstance(phrase, str | re.Pattern) or not _phrase_text(phrase).strip():
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
