"""Tests about the project rather than the daemon (in the style of datasette's test_docs.py): every setting
is documented in deploy/config.example.toml and in README.md, and every skill has a docstring and a test.

The lists are taken from the code (the ``Settings`` model, ``SkillRegistry.discover()``), so a setting or a
skill added without its documentation fails here.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from assistant.config import Settings, load_settings
from assistant.skillkit.registry import SkillRegistry
from assistant.skillkit.spec import SkillSpec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "config.example.toml"
README = ROOT / "README.md"
TESTS = Path(__file__).resolve().parents[1]


def setting_keys(model: type[BaseModel] = Settings, prefix: str = "") -> list[str]:
    """Dotted names of every leaf setting, walking nested sections."""
    keys: list[str] = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys.extend(setting_keys(ann, f"{prefix}{name}."))
        else:
            keys.append(prefix + name)
    return keys


SETTINGS = setting_keys()


def test_the_walk_finds_every_section() -> None:
    sections = {k.split(".")[0] for k in SETTINGS if "." in k}
    assert sections == {"server", "model", "memory", "feeds", "pages", "skills", "scheduler", "notify", "reminders", "voice"}
    assert {"data_dir", "timezone", "feeds.enabled", "skills.enabled", "notify.quiet_hours"} <= set(SETTINGS)


# ---------------------------------------------------------------- deploy/config.example.toml

_HEADER = re.compile(r"^\[(\w+)\]\s*(#.*)?$")
_KEY_LINE = re.compile(r"^(?:#\s?)?(\w+)\s*=\s*\S")


def split_comment(line: str) -> tuple[str, str]:
    """``key = value  # comment`` -> (``key = value``, ``comment``): the shortest head that is valid TOML."""
    for m in re.finditer(r"\s#", line):
        head = line[: m.start()]
        try:
            tomllib.loads(head)
        except tomllib.TOMLDecodeError:
            continue
        return head.strip(), line[m.end() :].strip()
    return line.strip(), ""


class ExampleLine:
    def __init__(self, number: int, section: str, text: str) -> None:
        self.number = number
        self.commented = text.startswith("#")
        self.assignment, self.comment = split_comment(text[1:].lstrip() if self.commented else text)
        self.key = self.assignment.split("=", 1)[0].strip()
        self.dotted = f"{section}.{self.key}" if section else self.key


def example_lines(text: str) -> list[ExampleLine]:
    """The lines of the example that set a key, commented out or not (prose comments are skipped)."""
    section = ""
    found = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        header = _HEADER.match(line)
        if header:
            section = header.group(1)
            continue
        m = _KEY_LINE.match(line)
        if not m:
            continue
        body = line[1:].lstrip() if line.startswith("#") else line
        try:
            tomllib.loads(split_comment(body)[0])
        except tomllib.TOMLDecodeError:
            continue  # prose that happens to contain "word = ..."
        found.append(ExampleLine(number, section, line))
    return found


def uncommented(text: str) -> str:
    """The example with every commented-out setting turned on."""
    keys = {line.number for line in example_lines(text) if line.commented}
    return "\n".join(
        raw.strip()[1:].lstrip() if n in keys else raw for n, raw in enumerate(text.splitlines(), 1)
    )


def test_example_config_names_every_setting_once_with_a_comment() -> None:
    lines = example_lines(EXAMPLE.read_text(encoding="utf-8"))
    named = [line.dotted for line in lines]
    missing = [k for k in SETTINGS if k not in named]
    assert missing == [], f"settings not in {EXAMPLE.name}: {missing}"
    unknown = sorted(set(named) - set(SETTINGS))
    assert unknown == [], f"{EXAMPLE.name} names settings that do not exist: {unknown}"
    twice = sorted({k for k in named if named.count(k) > 1})
    assert twice == [], f"named more than once in {EXAMPLE.name}: {twice}"
    bare = [f"line {line.number}: {line.dotted}" for line in lines if len(line.comment) < 8]
    assert bare == [], f"settings in {EXAMPLE.name} without a comment saying what they do: {bare}"


def test_example_config_loads_as_is_and_with_every_line_uncommented(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    settings = load_settings(EXAMPLE)
    assert settings.server.host == "127.0.0.1" and settings.skills.enabled and settings.feeds.enabled
    everything = tmp_path / "all.toml"
    everything.write_text(uncommented(text), encoding="utf-8")
    data = tomllib.loads(everything.read_text(encoding="utf-8"))
    flat = {  # a setting that is itself a table of tables ([personas.NAME]) counts once
        f"{s}.{k}" if isinstance(v, dict) and s not in SETTINGS else s
        for s, v in data.items()
        for k in (v if isinstance(v, dict) else [s])
    }
    assert sorted(flat) == sorted(SETTINGS)  # every setting is now given a value ...
    loaded = load_settings(everything)  # ... and every value shown is valid
    assert loaded.model.base_url == "http://192.168.1.20:8080/v1" and loaded.notify.quiet_hours == "22:00-07:00"


def test_example_line_parser() -> None:
    """The line parser sees commented-out keys and their comments, and tells prose from settings."""
    lines = example_lines(
        "top = 1  # a top-level key\n"
        "[server]\n"
        '# host = "x#y"   # the host\n'
        "port = 1\n"
        "# Use a server: then a = b does not parse as TOML\n"
    )
    assert [(line.dotted, line.commented, line.comment) for line in lines] == [
        ("top", False, "a top-level key"),
        ("server.host", True, "the host"),
        ("server.port", False, ""),
    ]


# ---------------------------------------------------------------- README.md


def readme_configuration() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Configuration\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_readme_configuration_names_every_setting() -> None:
    section = readme_configuration()
    missing = [k for k in SETTINGS if f"`{k}`" not in section]
    assert missing == [], f"settings missing from README.md's Configuration section (as `key`): {missing}"
    named = set(re.findall(r"`((?:[a-z_]+\.)?[a-z_]+)`", section))
    dotted = {n for n in named if "." in n and n.split(".")[0] in {k.split(".")[0] for k in SETTINGS}}
    assert sorted(dotted - set(SETTINGS)) == [], "README.md names settings that do not exist"


# ---------------------------------------------------------------- skills

REGISTRY = SkillRegistry.discover()


def test_the_builtin_skills_are_found() -> None:
    assert REGISTRY.errors == []
    assert {"time", "seuss", "digest"} <= set(REGISTRY.names())


@pytest.mark.parametrize("name", REGISTRY.names())
def test_skill_has_a_docstring(name: str) -> None:
    spec: SkillSpec = REGISTRY.get(name)
    doc = (spec.func.__doc__ or "").strip()
    assert len(doc) >= 20, f"skill {name!r} ({spec.func.__module__}.{spec.func.__qualname__}) has no docstring"


def _mentions(source: str, spec: SkillSpec) -> bool:
    module = spec.func.__module__
    return (
        module in source  # imports or names its module: skills.tell_time
        or re.search(rf"\b{re.escape(spec.func.__name__)}\(", source) is not None  # calls the function
        or re.search(rf"""["']{re.escape(spec.name)}["']""", source) is not None  # runs it by name
        or f"/api/skills/{spec.name}/" in source
    )


@pytest.mark.parametrize("name", REGISTRY.names())
def test_skill_has_a_test_file(name: str) -> None:
    spec = REGISTRY.get(name)
    files = sorted((TESTS / "skills").glob("test_*.py"))
    assert files, "no tests/skills/test_*.py files"
    mentioning = [f.name for f in files if _mentions(f.read_text(encoding="utf-8"), spec)]
    assert mentioning, f"skill {name!r} is mentioned in no tests/skills/test_*.py file"
