"""The import contract: which part of the daemon may import which.

Every module under assistant/, memory/ and skills/ is read with ``ast`` (nothing is imported), and every
import in it is collected: top-level ones, ones inside functions, ones under ``if TYPE_CHECKING:``, and
``importlib.import_module("...")`` calls whose module name starts with a literal. Then:

* **layers** -- a part may import only parts on lower layers (``LAYERS``, bottom first). Parts on the same
  layer do not import each other (memory never imports assistant.feeds, and so on);
* **narrower rules** for the parts other people write against (``ONLY``): memory imports only
  assistant.core and assistant.config; a skill imports only assistant.core, assistant.config, the model
  types (assistant.llm.types) and the skill API (assistant.skillkit.api);
* **no test code** -- nothing in the package imports ``tests`` or ``benchmarks`` (neither is installed);
* **no cycles between parts** -- checked on the import graph itself, independently of ``LAYERS``, so that
  reordering the table to make a test pass cannot hide a cycle;
* **no cycles between files** -- the same check one level down, module by module, inside a part too
  (``api/errors.py`` and ``api/disk_errors.py`` once imported each other through an import inside a
  function, which the part graph cannot see); ``file_cycle_report(root)`` runs it on any tree;
* **every module belongs to a part** -- a new package has to be placed in ``LAYERS`` on purpose.

Imports under ``TYPE_CHECKING`` count, for both rules. A type-only import is still a dependency of the
design: the lower part then names a type of the upper one in its signatures, mypy follows the import, and it
is one edit away from a runtime import. A lower part that needs to talk about an upper one declares a
Protocol of its own (as skillkit.api does for memory and feeds) and the composition root passes the real
thing in.

Where the layers differ from the first sketch of the issue, for these reasons (checked against the imports):
``assistant.app`` sits above ``assistant.api`` (it mounts the routers); ``assistant.voice`` sits above
``assistant.client`` (it talks to the daemon through it) and below ``assistant.cli`` (``assistant voice`` is a
CLI command); ``assistant.__main__`` is the very top (``python -m assistant`` runs the CLI).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("assistant", "memory", "skills")

# Bottom first. A part is a package or module; a module belongs to the longest part that prefixes it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("assistant", "assistant.core", "assistant.evals"),  # the bare package __init__; evals holds data files only
    ("assistant.config",),
    ("assistant.llm", "memory", "assistant.feeds", "assistant.notify"),
    ("assistant.pages",),  # fetches with assistant.feeds.fetch, measures prompts with assistant.llm
    ("assistant.chat",),
    ("assistant.skillkit",),
    ("skills", "assistant.reminders"),  # reminders use skillkit's schedule triggers; chat rules see them by a protocol
    ("assistant.services",),
    ("assistant.api",),
    ("assistant.app",),
    ("assistant.client",),
    ("assistant.voice",),
    ("assistant.cli",),
    ("assistant.__main__",),
)
LAYER_OF: dict[str, int] = {part: i for i, layer in enumerate(LAYERS) for part in layer}
EXACT_PARTS = {"assistant"}

# Parts that may import only these (a module, or a package and everything in it).
ONLY: dict[str, tuple[str, ...]] = {
    "memory": ("assistant.core", "assistant.config"),
    "skills": ("assistant.core", "assistant.config", "assistant.llm.types", "assistant.skillkit.api"),
}
FORBIDDEN_TOP = ("tests", "benchmarks")


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the imported module (or package), resolved to an absolute dotted name
    line: int
    type_checking: bool = False

    def __str__(self) -> str:
        tc = " (under TYPE_CHECKING)" if self.type_checking else ""
        return f"{self.module}:{self.line} imports {self.target}{tc}"


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def part_of(module: str) -> str | None:
    """The part a project module belongs to (longest match), or None for a third-party/stdlib module, or a
    project module that is in no part. The bare package ``assistant`` is a part of its own, not a prefix."""
    best = None
    for part in LAYER_OF:
        matches = module == part if part in EXACT_PARTS else _within(module, part)
        if matches and (best is None or len(part) > len(best)):
            best = part
    return best


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _literal_prefix(node: ast.expr) -> str | None:
    """The module name of import_module("x.y") or the literal head of import_module(f"x.y.{name}")."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        head = node.values[0]
        if isinstance(head, ast.Constant) and isinstance(head.value, str):
            return head.value.rstrip(".") or None
    return None


def imports_of(
    source: str, module: str, *, is_package: bool = False, known: Iterable[str] = ()
) -> list[Import]:
    """Every import in ``source`` (the text of ``module``), wherever it is in the file.

    ``known`` is the set of project modules: ``from pkg import name`` counts as importing ``pkg.name`` when
    that is a module, else ``pkg``.
    """
    known_set = set(known)
    package = module if is_package else module.rpartition(".")[0]
    found: list[Import] = []

    def resolve(level: int, name: str | None) -> str:
        if not level:
            return name or ""
        base = package.split(".")
        base = base[: len(base) - (level - 1)]
        return ".".join(base + ([name] if name else []))

    def visit(node: ast.AST, tc: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, tc)
            return
        if isinstance(node, ast.Import):
            found.extend(Import(module, a.name, node.lineno, tc) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = resolve(node.level, node.module)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append(Import(module, sub if sub in known_set else base, node.lineno, tc))
        elif (
            isinstance(node, ast.Call)
            and node.args
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__"))
            )
        ):
            name = _literal_prefix(node.args[0])
            if name:
                found.append(Import(module, name, node.lineno, tc))
        for child in ast.iter_child_nodes(node):
            visit(child, tc)

    visit(ast.parse(source), False)
    return found


def project_modules(root: Path = ROOT) -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is_package) for every module of the three packages."""
    modules: dict[str, tuple[Path, bool]] = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            rel = path.relative_to(root).with_suffix("").parts
            is_package = rel[-1] == "__init__"
            name = ".".join(rel[:-1] if is_package else rel)
            modules[name] = (path, is_package)
    return modules


def collect(sources: Mapping[str, tuple[str, bool]]) -> list[Import]:
    """All imports of the given modules (name -> (source, is_package))."""
    known = set(sources)
    out: list[Import] = []
    for name, (source, is_package) in sources.items():
        out.extend(imports_of(source, name, is_package=is_package, known=known))
    return out


def layer_violations(imports: Iterable[Import]) -> list[str]:
    """Upward and sideways imports between parts, breaches of ``ONLY``, and imports of test code."""
    problems: list[str] = []
    for imp in imports:
        top = imp.target.split(".")[0]
        if top in FORBIDDEN_TOP:
            problems.append(f"{imp}: the package must not import {top} (not installed, not part of the daemon)")
            continue
        src, dst = part_of(imp.module), part_of(imp.target)
        if src is None:
            problems.append(f"{imp.module} is in no part: add it to LAYERS")
            continue
        if dst is None and top in PACKAGES:
            problems.append(f"{imp}: {imp.target} is in no part: add it to LAYERS")
            continue
        if dst is None or dst == src:
            continue
        if LAYER_OF[dst] > LAYER_OF[src]:
            problems.append(f"{imp}: upward, {src} (layer {LAYER_OF[src]}) -> {dst} (layer {LAYER_OF[dst]})")
        elif LAYER_OF[dst] == LAYER_OF[src]:
            problems.append(f"{imp}: sideways, {src} and {dst} are on the same layer")
        for limited, allowed in ONLY.items():
            if _within(imp.module, limited) and not any(_within(imp.target, a) for a in allowed):
                problems.append(f"{imp}: {limited} may import only {', '.join(allowed)}")
    return sorted(set(problems))


def part_graph(imports: Iterable[Import]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for imp in imports:
        src, dst = part_of(imp.module), part_of(imp.target)
        if src is not None and dst is not None and src != dst:
            graph.setdefault(src, set()).add(dst)
            graph.setdefault(dst, set())
    return graph


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return sorted(found)


def _shortest_cycle(graph: Mapping[str, Iterable[str]], start: str, members: set[str]) -> list[str]:
    """start -> ... -> start, the fewest steps, within ``members`` (breadth first)."""
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph.get(v, ())):
                if w not in members or w in came_from:
                    continue
                came_from[w] = v
                if w == start:
                    path = [start]
                    while path[-1] != start or len(path) == 1:
                        path.append(came_from[path[-1]])
                    return path[::-1]
                nxt.append(w)
        frontier = nxt
    return [start]


def cycle_report(
    graph: Mapping[str, set[str]], imports: Iterable[Import], node_of: Callable[[str], str | None] = part_of
) -> list[str]:
    """One line per cycle: the nodes round it (parts, or modules with ``node_of=module_of(...)``) and, for
    each step, the first import that makes it."""
    imports = sorted(imports, key=lambda i: (i.module, i.line))
    lines = []
    for component in cycles(graph):
        path = _shortest_cycle(graph, component[0], set(component))
        steps = []
        for a, b in zip(path, path[1:], strict=False):
            first = next(i for i in imports if node_of(i.module) == a and node_of(i.target) == b)
            steps.append(str(first))
        lines.append(f"cycle {' -> '.join(path)} (of {', '.join(component)}): " + "; ".join(steps))
    return lines


def module_of(known: Iterable[str]) -> Callable[[str], str | None]:
    """The project module an import target lands in: itself when it is a module (or a package's
    ``__init__``), else the longest module that prefixes it; None outside the project."""
    known_set = set(known)

    def node(target: str) -> str | None:
        parts = target.split(".")
        for n in range(len(parts), 0, -1):
            name = ".".join(parts[:n])
            if name in known_set:
                return name
        return None

    return node


def module_graph(imports: Iterable[Import], known: Iterable[str]) -> dict[str, set[str]]:
    """File -> the files it imports (an import of a package points at its ``__init__``), wherever the import
    stands: at the top, in a function, under TYPE_CHECKING."""
    node = module_of(known)
    graph: dict[str, set[str]] = {}
    for imp in imports:
        src, dst = node(imp.module), node(imp.target)
        if src is not None and dst is not None and src != dst:
            graph.setdefault(src, set()).add(dst)
            graph.setdefault(dst, set())
    return graph


def file_cycle_report(root: Path = ROOT) -> list[str]:
    """The file-level cycles of the tree at ``root`` (its assistant/, memory/ and skills/), one line each."""
    modules = project_modules(root)
    sources = {name: (path.read_text(encoding="utf-8"), pkg) for name, (path, pkg) in modules.items()}
    imports = collect(sources)
    return cycle_report(module_graph(imports, modules), imports, node_of=module_of(modules))


@pytest.fixture(scope="module")
def real_imports() -> list[Import]:
    modules = project_modules()
    return collect({name: (path.read_text(encoding="utf-8"), pkg) for name, (path, pkg) in modules.items()})


# ---------------------------------------------------------------- the contract, on the real code


def test_every_module_belongs_to_a_part() -> None:
    orphans = [name for name in project_modules() if part_of(name) is None]
    assert orphans == [], f"modules in no part of LAYERS: {orphans}"


def test_imports_go_only_downward(real_imports: list[Import]) -> None:
    assert len(real_imports) > 100  # the walk saw the code (it is not vacuously empty)
    problems = layer_violations(real_imports)
    assert problems == [], "import contract broken:\n" + "\n".join(problems)


def test_no_import_cycles_between_parts(real_imports: list[Import]) -> None:
    graph = part_graph(real_imports)
    assert {"memory", "skills", "assistant.services", "assistant.api"} <= set(graph)
    problems = cycle_report(graph, real_imports)
    assert problems == [], "\n".join(problems)


def test_no_import_cycles_between_files() -> None:
    problems = file_cycle_report()
    assert problems == [], "\n".join(problems)


def test_every_part_in_layers_exists() -> None:
    modules = project_modules()
    missing = [p for p in LAYER_OF if not any(_within(m, p) for m in modules)]
    assert missing == [], f"LAYERS names parts that are not in the tree: {missing}"


# ---------------------------------------------------------------- the checker catches what it should


def _check(sources: dict[str, str]) -> list[str]:
    modules = {name: (text, name.endswith("__init__")) for name, text in sources.items()}
    modules = {n.removesuffix(".__init__"): v for n, v in modules.items()}
    return layer_violations(collect(modules))


def test_checker_catches_a_planted_upward_import() -> None:
    problems = _check({"memory.store": "from assistant.services import Services\n"})
    assert problems == [
        "memory.store:1 imports assistant.services: memory may import only assistant.core, assistant.config",
        "memory.store:1 imports assistant.services: upward, memory (layer 2) -> assistant.services (layer 7)",
    ]


def test_checker_sees_imports_in_functions_under_type_checking_and_relative() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from assistant.chat.orchestrator import ChatService\n"
        "def later():\n"
        "    import assistant.api.deps\n"
        "    from ..skillkit import registry\n"
        "    return importlib.import_module(f'assistant.cli.{name}')\n"
    )
    problems = _check({"assistant.feeds.service": source, "assistant.skillkit.registry": ""})
    assert problems == [
        "assistant.feeds.service:3 imports assistant.chat.orchestrator (under TYPE_CHECKING): upward, "
        "assistant.feeds (layer 2) -> assistant.chat (layer 4)",
        "assistant.feeds.service:5 imports assistant.api.deps: upward, assistant.feeds (layer 2) -> assistant.api (layer 8)",
        "assistant.feeds.service:6 imports assistant.skillkit.registry: upward, assistant.feeds (layer 2) -> "
        "assistant.skillkit (layer 5)",
        "assistant.feeds.service:7 imports assistant.cli: upward, assistant.feeds (layer 2) -> assistant.cli (layer 12)",
    ]


def test_checker_catches_sideways_narrow_and_test_imports() -> None:
    problems = _check(
        {
            "memory.recall": "from assistant.feeds.models import FeedEntry\n",
            "skills.weather": "from assistant.chat.orchestrator import ChatService\nfrom assistant.llm.worker import W\n",
            "assistant.cli.bench": "from benchmarks.bench_chat import main_bench\n",
            "assistant.notify.service": "import tests.fakes\n",
            "assistant.api.deps": "from assistant.gadgets import x\n",
            "assistant.gadgets": "",
        }
    )
    skills_only = "skills may import only assistant.core, assistant.config, assistant.llm.types, assistant.skillkit.api"
    assert problems == [
        "assistant.api.deps:1 imports assistant.gadgets: assistant.gadgets is in no part: add it to LAYERS",
        "assistant.cli.bench:1 imports benchmarks.bench_chat: the package must not import benchmarks "
        "(not installed, not part of the daemon)",
        "assistant.notify.service:1 imports tests.fakes: the package must not import tests "
        "(not installed, not part of the daemon)",
        "memory.recall:1 imports assistant.feeds.models: memory may import only assistant.core, assistant.config",
        "memory.recall:1 imports assistant.feeds.models: sideways, memory and assistant.feeds are on the same layer",
        f"skills.weather:1 imports assistant.chat.orchestrator: {skills_only}",
        f"skills.weather:2 imports assistant.llm.worker: {skills_only}",
    ]
    assert part_of("assistant.gadgets") is None and part_of("assistant") == "assistant"
    assert part_of("assistant.skillkit.api") == "assistant.skillkit" and part_of("pydantic") is None


def test_checker_finds_cycles() -> None:
    imports = collect(
        {
            "memory.service": ("import assistant.config\n", False),
            "assistant.config": ("from assistant.notify.models import Notification\n", False),
            "assistant.notify.models": ("from memory.service import MemoryService\n", False),
            "assistant.chat.orchestrator": ("import assistant.llm.types\n", False),
        }
    )
    graph = part_graph(imports)
    assert cycles(graph) == [["assistant.config", "assistant.notify", "memory"]]
    assert cycle_report(graph, imports) == [
        "cycle assistant.config -> assistant.notify -> memory -> assistant.config "
        "(of assistant.config, assistant.notify, memory): "
        "assistant.config:1 imports assistant.notify.models; assistant.notify.models:1 imports memory.service; "
        "memory.service:1 imports assistant.config"
    ]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def _plant(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_file_check_fails_on_a_planted_file_level_cycle(tmp_path: Path) -> None:
    """The shape the errors/disk_errors pair had: two files of one part importing each other, one of the two
    imports inside a function. The part graph has no cycle (one part); the file graph has."""
    tree = _plant(
        tmp_path / "cyclic",
        {
            "assistant/__init__.py": "",
            "assistant/api/__init__.py": "",
            "assistant/api/errors.py": (
                "def error_response(exc):\n    return exc\n\n"
                "def install(app):\n    from assistant.api.disk_errors import DiskErrorMiddleware\n"
                "    app.add_middleware(DiskErrorMiddleware)\n"
            ),
            "assistant/api/disk_errors.py": "from assistant.api.errors import error_response\n",
            "assistant/api/chat.py": "from assistant.api import errors\n",
        },
    )
    modules = project_modules(tree)
    imports = collect({n: (p.read_text(encoding="utf-8"), pkg) for n, (p, pkg) in modules.items()})
    assert cycles(part_graph(imports)) == []  # what the part-level test saw: nothing
    assert file_cycle_report(tree) == [
        "cycle assistant.api.disk_errors -> assistant.api.errors -> assistant.api.disk_errors "
        "(of assistant.api.disk_errors, assistant.api.errors): "
        "assistant.api.disk_errors:1 imports assistant.api.errors; "
        "assistant.api.errors:5 imports assistant.api.disk_errors"
    ]


def test_file_check_passes_once_the_shared_function_moves_down(tmp_path: Path) -> None:
    tree = _plant(
        tmp_path / "fixed",
        {
            "assistant/__init__.py": "",
            "assistant/api/__init__.py": "",
            "assistant/api/error_shape.py": "def error_response(exc):\n    return exc\n",
            "assistant/api/errors.py": (
                "from assistant.api.disk_errors import DiskErrorMiddleware\n"
                "from assistant.api.error_shape import error_response\n"
            ),
            "assistant/api/disk_errors.py": "from assistant.api.error_shape import error_response\n",
        },
    )
    assert file_cycle_report(tree) == []


def test_file_check_sees_a_cycle_through_a_package_init_and_across_packages(tmp_path: Path) -> None:
    """``from pkg import Name`` lands in pkg/__init__.py; a longer cycle is reported by its shortest loop."""
    tree = _plant(
        tmp_path / "init",
        {
            "assistant/__init__.py": "",
            "assistant/feeds/__init__.py": "from assistant.feeds.service import FeedService\n",
            "assistant/feeds/service.py": "import assistant.feeds.fetch\n",
            "assistant/feeds/fetch.py": "if TYPE_CHECKING:\n    from assistant.feeds import FeedService\n",
            "memory/__init__.py": "",
            "memory/a.py": "import memory.b.deep.name\n",
            "memory/b.py": "from memory import a\n",
        },
    )
    assert file_cycle_report(tree) == [
        "cycle assistant.feeds -> assistant.feeds.service -> assistant.feeds.fetch -> assistant.feeds "
        "(of assistant.feeds, assistant.feeds.fetch, assistant.feeds.service): "
        "assistant.feeds:1 imports assistant.feeds.service; assistant.feeds.service:1 imports "
        "assistant.feeds.fetch; assistant.feeds.fetch:2 imports assistant.feeds (under TYPE_CHECKING)",
        "cycle memory.a -> memory.b -> memory.a (of memory.a, memory.b): "
        "memory.a:1 imports memory.b.deep.name; memory.b:1 imports memory.a",
    ]
