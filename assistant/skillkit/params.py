"""A skill's parameters, read from its function's signature the way a tool schema is read from a Python
function: type hints give the types, defaults the defaults, ``Literal[...]`` or an ``Enum`` the choices,
``Annotated[int, Field(ge=1, le=10)]`` the ranges, ``Annotated[str, "..."]`` or the docstring the
descriptions. pydantic checks and converts the values."""

from __future__ import annotations

import enum
import inspect
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, NotRequired, TypedDict

import annotated_types
from pydantic import TypeAdapter
from pydantic.fields import FieldInfo

from assistant.skillkit.context import SkillContext
from assistant.skillkit.docstrings import docstring_params


class ParamInfo(TypedDict):
    """A parameter as ``/api/skills`` shows it (``SkillParam.describe``); the bounds only when set."""

    type: str
    default: object  # JSON: the default as pydantic dumps it (text when it cannot)
    description: str
    required: bool
    choices: NotRequired[list[object]]
    min: NotRequired[float]
    max: NotRequired[float]


@dataclass(frozen=True)
class SkillParam:
    """One skill parameter, read from the function's signature. ``annotation`` is what pydantic checks a
    value against (constraints included); ``choices``/``minimum``/``maximum`` are shown to users."""

    name: str
    annotation: Any
    type_name: str
    default: object = None
    description: str = ""
    required: bool = False
    choices: tuple[object, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None

    @cached_property
    def adapter(self) -> TypeAdapter[Any]:
        return TypeAdapter(self.annotation)

    def check(self, value: object) -> object:
        """The value converted to the parameter's type; pydantic's ValidationError when it does not fit."""
        if isinstance(value, str) and self.choices and value not in self.choices:
            by_text = {str(c).lower(): c for c in self.choices}  # "2" -> 2 for Literal[1, 2, 3]
            value = by_text.get(value.lower(), value)
        return self.adapter.validate_python(value)

    def describe(self) -> ParamInfo:
        out: ParamInfo = {
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


def _jsonable(adapter: TypeAdapter[Any], value: object) -> object:
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


def _split_annotated(hint: object) -> tuple[object, list[object]]:
    if typing.get_origin(hint) is typing.Annotated:
        base, *meta = typing.get_args(hint)
        return base, meta
    return hint, []


def _is_union(hint: object) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _without_none(hint: object) -> tuple[object, bool]:
    """``X | None`` -> (X, True); other hints unchanged. Annotated inside the union is unwrapped."""
    if not _is_union(hint):
        return hint, False
    members = [a for a in typing.get_args(hint) if a is not type(None)]
    nullable = len(members) < len(typing.get_args(hint))
    if len(members) == 1:
        return members[0], nullable
    return typing.Union[tuple(members)], nullable  # noqa: UP007 - built from a runtime tuple


def _accepts_none(hint: object) -> bool:
    base, _ = _split_annotated(hint)
    return base is None or base is type(None) or base is Any or _without_none(base)[1]


def _is_context(hint: object) -> bool:
    base, _ = _split_annotated(hint)
    return isinstance(base, type) and issubclass(base, SkillContext)


def _type_name(hint: object) -> str:
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


def _choices(hint: object) -> tuple[object, ...] | None:
    if typing.get_origin(hint) is Literal:
        return tuple(typing.get_args(hint))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return tuple(m.value for m in hint)
    return None


def _bounds(meta: Sequence[object], integer: bool) -> tuple[float | None, float | None]:
    """Inclusive bounds from ``Field(ge=..., le=...)`` or annotated_types constraints (an exclusive bound
    of an integer becomes the next integer; of a float it is enforced but not shown)."""
    lo: float | None = None
    hi: float | None = None
    flat: list[object] = []
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


def _meta_description(meta: Sequence[object]) -> str:
    for m in meta:
        if isinstance(m, str):
            return m.strip()
        if isinstance(m, FieldInfo) and m.description:
            return m.description.strip()
        doc = getattr(m, "documentation", None)  # typing_extensions.Doc
        if isinstance(doc, str):
            return doc.strip()
    return ""


def _param(p: inspect.Parameter, hint: object, doc: str, where: str) -> SkillParam:
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
    annotation: Any = typing.Annotated[(base, *checked)] if checked else base  # a type form
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


def infer_signature(func: Callable[..., object]) -> Signature:
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
