"""Every plugin group is documented and tested (in the style of datasette's documentation tests).

The groups come from the code (``assistant.core.plugins.GROUPS``) and the built-ins from pyproject.toml, so a
group or a built-in added without its documentation, or a group without a test, fails here.
"""

from __future__ import annotations

import ast
import importlib
import re
import tomllib
from pathlib import Path

import pytest

from assistant.core import plugins

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "plugins.md"
TESTS = Path(__file__).resolve().parents[1]
GROUPS = sorted(plugins.GROUPS)


def pyproject_entry_points() -> dict[str, dict[str, str]]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    eps: dict[str, dict[str, str]] = data["project"]["entry-points"]
    return eps


def doc_section(group: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    heading = f"\n## `{group}`\n"
    assert heading in text, f"docs/plugins.md has no section headed ## `{group}`"
    start = text.index(heading)
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def protocols(group: str) -> list[str]:
    """The dotted names of the protocols GROUPS says a group's entry points follow."""
    return re.findall(r"\(([\w.]+\.[A-Z]\w+)\)", plugins.GROUPS[group])


def test_pyproject_registers_the_groups_and_only_those() -> None:
    assert sorted(pyproject_entry_points()) == GROUPS


@pytest.mark.parametrize("group", GROUPS)
def test_group_is_documented_with_its_protocol_and_an_example(group: str) -> None:
    section = doc_section(group)
    table = DOC.read_text(encoding="utf-8").split("\n## ", 1)[0]
    assert f"| `{group}` |" in table, f"docs/plugins.md's table has no row for {group}"
    assert f'[project.entry-points."{group}"]' in section, (
        f"{group}: no example of registering in a pyproject"
    )
    python = re.findall(r"```python\n(.*?)```", section, re.S)
    assert python, f"{group}: no Python example"
    for block in python:
        ast.parse(block)  # the examples are Python
    for dotted in protocols(group):
        module, _, name = dotted.rpartition(".")
        proto = getattr(importlib.import_module(module), name)
        assert name in section, f"{group}: docs/plugins.md does not name {name}"
        assert "__call__" in vars(proto), f"{dotted} is not a factory protocol"
        assert re.search(rf"class {name}\(Protocol\):\n    def __call__", section), (
            f"{name}: signature not shown"
        )


@pytest.mark.parametrize("group", GROUPS)
def test_every_builtin_is_named_in_its_section(group: str) -> None:
    section = doc_section(group)
    missing = [name for name in pyproject_entry_points()[group] if f"`{name}`" not in section]
    if group == plugins.SKILLS:
        missing = []  # the built-in skills are documented in docs/skills.md (and by tests/meta/test_docs.py)
    assert missing == [], f"built-in {group} plugins not named in docs/plugins.md: {missing}"


@pytest.mark.parametrize("group", GROUPS)
def test_every_group_has_a_test(group: str) -> None:
    constant = next(k for k, v in vars(plugins).items() if k.isupper() and v == group)
    mentions = [
        f.name
        for f in sorted((TESTS / "meta").glob("test_plugins*.py"))
        if f.name != Path(__file__).name
        and (f"plugins.{constant}" in (text := f.read_text(encoding="utf-8")) or f'"{group}"' in text)
    ]
    assert mentions, (
        f"{group} is tested in no tests/meta/test_plugins*.py file (by plugins.{constant} or its name)"
    )


def test_the_protocol_list_is_read_from_groups() -> None:
    assert protocols(plugins.SPEECH) == [
        "assistant.voice.stt.SpeechToTextFactory",
        "assistant.voice.tts.TextToSpeechFactory",
    ]
    assert protocols(plugins.CHANNELS) == ["assistant.notify.channel.ChannelFactory"]
