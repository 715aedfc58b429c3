"""Each fake in tests/fakes.py, tests/skill_fakes.py and tests/memory_fakes.py stands in for a real interface;
this checks that it does, rather than assuming it.

For each fake, ``STANDS_IN_FOR`` names the protocol it must satisfy (every member of it, methods with
compatible signatures) and the real class it replaces (every public method and attribute of the fake exists
there, with a compatible signature). What only the fake has -- the helpers tests use to drive it or read it
(``set``, ``advance``, ``add``, the recorded ``prompts``/``sent``) -- is listed in ``test_only``, and a name
in ``test_only`` must not exist on the real class (else it is not test-only and is checked like the rest).

Compatible signatures: every parameter the fake accepts has the same name and kind (positional, keyword-only,
*args, **kwargs) on the real one; every parameter of the real one is accepted by the fake; a parameter that
is optional on the real one is optional on the fake. Defaults and annotations may differ.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest

import tests.fakes
import tests.memory_fakes
import tests.skill_fakes
from assistant.core.clock import Clock, SystemClock
from assistant.feeds.service import FeedService
from assistant.llm.remote import RemoteBackend
from assistant.llm.types import LLMBackend
from assistant.notify.service import Notifier
from memory.embedder import Embedder, SentenceTransformerEmbedder
from memory.service import MemoryService

FAKE_MODULES: tuple[ModuleType, ...] = (tests.fakes, tests.skill_fakes, tests.memory_fakes)


@dataclass(frozen=True)
class StandIn:
    protocol: type | None  # every member of it must be on the fake
    real: type  # every public member of the fake (but test_only) must be on it
    test_only: frozenset[str] = field(default_factory=frozenset)


STANDS_IN_FOR: dict[str, StandIn] = {
    "FixedClock": StandIn(Clock, SystemClock, frozenset({"set", "advance"})),
    # RemoteBackend is a real LLMBackend that imports no native library (LlamaBackend has the same members).
    "FakeLLM": StandIn(
        LLMBackend, RemoteBackend, frozenset({"reply", "gate", "prompts", "params", "started", "cancelled", "closed"})
    ),
    "RecordingNotifier": StandIn(None, Notifier, frozenset({"sent"})),
    "FakeFeeds": StandIn(None, FeedService, frozenset({"add", "stored", "reported", "mark_calls"})),
    "FakeMemory": StandIn(None, MemoryService, frozenset({"added"})),
    "HashingEmbedder": StandIn(Embedder, SentenceTransformerEmbedder, frozenset({"calls"})),
}


def fake_classes() -> dict[str, type]:
    """The public classes defined in the fake modules."""
    return {
        name: obj
        for module in FAKE_MODULES
        for name, obj in vars(module).items()
        if inspect.isclass(obj) and obj.__module__ == module.__name__ and not name.startswith("_")
    }


def instance_attributes(cls: type) -> set[str]:
    """Names ``__init__`` assigns on ``self`` (read from its source: the class is not instantiated)."""
    init = cls.__dict__.get("__init__")
    if init is None:
        return set()
    tree = ast.parse(textwrap.dedent(inspect.getsource(init)))
    names = set()
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        for t in targets:
            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                names.add(t.attr)
    return names


def members(cls: type) -> set[str]:
    """Public methods, properties, class attributes, annotated attributes and instance attributes."""
    names = {n for n in dir(cls) if not n.startswith("_")}
    for klass in cls.__mro__:
        if klass is object:
            continue
        names |= {n for n in getattr(klass, "__annotations__", {}) if not n.startswith("_")}
        names |= {n for n in instance_attributes(klass) if not n.startswith("_")}
    return names


def protocol_members(proto: type) -> set[str]:
    return {
        n
        for n in set(vars(proto)) | set(getattr(proto, "__annotations__", {}))
        if not n.startswith("_")
    }


def is_method(cls: type, name: str) -> bool:
    return inspect.isfunction(inspect.getattr_static(cls, name, None))


def signature_problems(fake: type, real: type, name: str) -> list[str]:
    """Why ``fake.name`` cannot be called everywhere ``real.name`` is (empty when it can)."""
    f_params = [p for p in inspect.signature(getattr(fake, name)).parameters.values() if p.name != "self"]
    r_params = [p for p in inspect.signature(getattr(real, name)).parameters.values() if p.name != "self"]
    where = f"{fake.__name__}.{name} vs {real.__name__}.{name}"
    problems = []
    r_by_name = {p.name: p for p in r_params}
    f_by_name = {p.name: p for p in f_params}
    for p in f_params:
        q = r_by_name.get(p.name)
        if q is None:
            problems.append(f"{where}: the real one has no parameter {p.name!r}")
        elif q.kind != p.kind:
            problems.append(f"{where}: {p.name!r} is {p.kind.description} on the fake, {q.kind.description} on the real one")
        elif q.default is not inspect.Parameter.empty and p.default is inspect.Parameter.empty:
            problems.append(f"{where}: {p.name!r} is optional on the real one but required on the fake")
    for q in r_params:
        if q.name not in f_by_name:
            problems.append(f"{where}: the fake does not accept {q.name!r}")
    f_positional = [p.name for p in f_params if p.kind <= p.POSITIONAL_OR_KEYWORD]
    r_positional = [q.name for q in r_params if q.kind <= q.POSITIONAL_OR_KEYWORD]
    if sorted(f_positional) == sorted(r_positional) and f_positional != r_positional:
        problems.append(f"{where}: positional parameters in a different order")
    return problems


def kind_mismatch(fake: type, real: type, name: str) -> str:
    def kind(cls: type) -> str:
        return "a method" if is_method(cls, name) else "an attribute"

    return f"{fake.__name__}.{name} is {kind(fake)} on the fake but {kind(real)} on {real.__name__}, so it cannot stand in for it"


def stand_in_problems(fake: type, spec: StandIn) -> list[str]:
    problems = []
    fake_members = members(fake)
    real_members = members(spec.real)
    if spec.protocol is not None:
        for name in sorted(protocol_members(spec.protocol)):
            if name not in fake_members:
                problems.append(f"{fake.__name__} lacks {spec.protocol.__name__}.{name}")
            elif is_method(spec.protocol, name):
                problems.extend(signature_problems(fake, spec.protocol, name))
    for name in sorted(fake_members - spec.test_only):
        if name not in real_members:
            problems.append(f"{fake.__name__}.{name} is not on {spec.real.__name__} (list it in test_only if the tests need it)")
        elif is_method(fake, name) != is_method(spec.real, name):
            problems.append(kind_mismatch(fake, spec.real, name))
        elif is_method(fake, name):
            problems.extend(signature_problems(fake, spec.real, name))
    for name in sorted(spec.test_only):
        if name not in fake_members:
            problems.append(f"{fake.__name__}: test_only names {name!r}, which the fake does not have")
        elif is_method(spec.real, name) and not is_method(fake, name):
            problems.append(kind_mismatch(fake, spec.real, name))
        elif name in real_members:
            problems.append(f"{fake.__name__}.{name} is listed as test-only but {spec.real.__name__} has it too")
    return problems


def test_every_fake_is_listed() -> None:
    assert sorted(fake_classes()) == sorted(STANDS_IN_FOR)


@pytest.mark.parametrize("name", sorted(STANDS_IN_FOR))
def test_fake_satisfies_the_interface_it_stands_in_for(name: str) -> None:
    problems = stand_in_problems(fake_classes()[name], STANDS_IN_FOR[name])
    assert problems == [], "\n".join(problems)


# ---------------------------------------------------------------- the checker catches what it should


class _RealThing:
    kind = "real"

    def __init__(self) -> None:
        self.count = 0

    def send(self, title: str, body: str = "", *, urgent: bool = False) -> None: ...

    def close(self) -> None: ...

    def reset(self) -> None: ...


class _GoodFake:
    kind = "fake"

    def __init__(self) -> None:
        self.count = 0
        self.log: list[str] = []

    def send(self, title: str, body: str = "x", *, urgent: bool = True) -> None: ...


class _BadFake:
    def __init__(self) -> None:
        self.count = 0
        self.close_calls = 0
        self.reset = True

    def send(self, title: str, urgent: bool = False, *, body: str) -> None: ...

    def flush(self) -> None: ...

    def close(self, force: bool) -> None: ...

    def kind(self) -> str: ...  # type: ignore[no-redef]


def test_checker_accepts_a_good_fake_and_names_what_is_wrong_with_a_bad_one() -> None:
    assert stand_in_problems(_GoodFake, StandIn(None, _RealThing, frozenset({"log"}))) == []
    assert stand_in_problems(_GoodFake, StandIn(None, _RealThing)) == [
        "_GoodFake.log is not on _RealThing (list it in test_only if the tests need it)"
    ]
    assert stand_in_problems(_BadFake, StandIn(None, _RealThing, frozenset({"count", "gone", "reset"}))) == [
        "_BadFake.close vs _RealThing.close: the real one has no parameter 'force'",
        "_BadFake.close_calls is not on _RealThing (list it in test_only if the tests need it)",
        "_BadFake.flush is not on _RealThing (list it in test_only if the tests need it)",
        "_BadFake.kind is a method on the fake but an attribute on _RealThing, so it cannot stand in for it",
        "_BadFake.send vs _RealThing.send: 'urgent' is positional or keyword on the fake, keyword-only on the real one",
        "_BadFake.send vs _RealThing.send: 'body' is keyword-only on the fake, positional or keyword on the real one",
        "_BadFake.count is listed as test-only but _RealThing has it too",
        "_BadFake: test_only names 'gone', which the fake does not have",
        "_BadFake.reset is an attribute on the fake but a method on _RealThing, so it cannot stand in for it",
    ]
    assert signature_problems(_GoodFake, _RealThing, "send") == []
    assert "'body' is optional on the real one but required on the fake" in " ".join(
        signature_problems(type("F", (), {"send": lambda self, title, body, *, urgent=False: None}), _RealThing, "send")
    )


def test_checker_requires_the_whole_protocol() -> None:
    class Clocklike:
        def now(self, tz: Any) -> Any: ...

    assert stand_in_problems(type("NoClock", (), {}), StandIn(Clock, SystemClock)) == ["NoClock lacks Clock.now"]
    assert stand_in_problems(Clocklike, StandIn(Clock, SystemClock)) == [
        "Clocklike.now vs Clock.now: the real one has no parameter 'tz'",
        "Clocklike.now vs SystemClock.now: the real one has no parameter 'tz'",
    ]
