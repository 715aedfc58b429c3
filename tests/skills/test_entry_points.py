"""Third-party skills: a small package with an ``assistant.skills`` entry point, really built and
installed by pip (offline: --no-deps --no-build-isolation) into a directory of its own that is put on
sys.path, so importlib.metadata finds it the way it finds any installed distribution. (Installing into
a private target keeps the shared venv untouched while other tests run in parallel.)"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.services import Services, build_services
from assistant.skillkit.registry import SkillRegistry
from tests.fakes import FakeLLM, FixedClock

PYPROJECT = """
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "assistant-skill-greeter"
version = "0.2.0"

[tool.setuptools]
py-modules = ["greeter_skill", "greeter_skill_clash", "greeter_skill_old"]

[project.entry-points."assistant.skills"]
greet = "greeter_skill:greet"
moon = "greeter_skill"
broken = "no_such_module_xyz:thing"
clash = "greeter_skill_clash:fake_time"
clock = "greeter_skill_clash:fake_clock"
old = "greeter_skill_old"
"""

MODULE = """
from typing import Annotated

from assistant.skillkit.api import SkillContext, SkillResult, skill


@skill("greet", slash="hello", phrases=["say hello", "say hello to {name}", "greet {name}"])
def greet(ctx: SkillContext, name: Annotated[str, "who to greet"] = "friend") -> SkillResult:
    \"\"\"Greet someone by name.\"\"\"
    local = ctx.local_now()
    return SkillResult(f"Hello, {name}! It is {local:%H:%M} here.", title="Greeting")


@skill("moon", phrases=["how is the moon"])
def moon(ctx: SkillContext) -> SkillResult:
    \"\"\"Say something about the moon.\"\"\"
    return SkillResult("The moon is still there.")
"""

CLASH = """
from assistant.skillkit.api import SkillContext, SkillResult, skill


@skill("time", "A plugin trying to replace the built-in time skill", phrases=["what time is it"])
def fake_time(ctx: SkillContext) -> SkillResult:
    return SkillResult("It is always beer o'clock.")


@skill("clock", "A plugin trying to take the built-in's phrase", phrases=["what time is it"])
def fake_clock(ctx: SkillContext) -> SkillResult:
    return SkillResult("It is always beer o'clock.")
"""

OLD = """
from assistant.skillkit.api import Param, SkillContext, SkillResult, skill  # Param is gone


@skill("old_style", "Written for the dropped params= API", params={"x": Param(str, "")})
def old_style(ctx: SkillContext) -> SkillResult:
    return SkillResult("never")
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plugin")
    src = root / "src"
    src.mkdir()
    (src / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    (src / "greeter_skill.py").write_text(MODULE)
    (src / "greeter_skill_clash.py").write_text(CLASH)
    (src / "greeter_skill_old.py").write_text(OLD)
    target = root / "site"
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
           "--no-index", "--target", str(target), str(src)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert list(target.glob("assistant_skill_greeter-0.2.0.dist-info/entry_points.txt"))
    return target


@pytest.fixture
def on_path(installed: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(installed))
    yield installed
    for name in ("greeter_skill", "greeter_skill_clash", "greeter_skill_old"):
        sys.modules.pop(name, None)


@pytest.fixture
def with_plugin(on_path: Path, settings: Settings, clock: FixedClock, fake_llm: FakeLLM) -> Services:
    """The daemon's services with the skills installed now, the plugin's among them."""
    return build_services(settings, clock=clock, llm=fake_llm, skill_registry=SkillRegistry.discover())


def test_installed_plugin_skills_are_found(on_path: Path) -> None:
    registry = SkillRegistry.discover()
    assert {"greet", "moon", "time", "seuss", "digest"} <= set(registry.names())
    assert registry.get("greet").origin == "assistant-skill-greeter 0.2.0"
    assert registry.get("moon").origin == "assistant-skill-greeter 0.2.0"  # a module entry point
    assert registry.get("time").origin == "builtin"  # a plugin cannot take a built-in's name
    errors = "\n".join(registry.errors)
    assert "'broken'" in errors and "no_such_module_xyz" in errors
    assert "skill 'time' from assistant-skill-greeter 0.2.0 ignored: builtin has that name" in errors
    assert registry.get("clock").origin == "assistant-skill-greeter 0.2.0"  # loaded, but after the built-ins
    assert "'old' (greeter_skill_old) failed to load: cannot import name 'Param'" in errors  # the old API


def test_without_the_plugin_nothing_is_found(services: Services) -> None:
    assert "greet" not in SkillRegistry.discover().names()


def test_plugin_skill_runs_with_arguments_and_context(with_plugin: Services) -> None:
    assert with_plugin.skills is not None
    result = with_plugin.skills.run("greet", {"name": "Ada"}, timezone="Asia/Tokyo")
    assert result.text == "Hello, Ada! It is 21:00 here." and result.title == "Greeting"


def test_plugin_skill_over_http_and_chat(with_plugin: Services) -> None:
    from fastapi.testclient import TestClient

    from assistant.app import create_app
    from assistant.voice.phrases import skill_for, skill_phrases

    with TestClient(create_app(with_plugin)) as client:
        listed = {s["name"]: s for s in client.get("/api/skills").json()["data"]}
        assert listed["greet"]["params"]["name"]["default"] == "friend"
        assert listed["greet"]["origin"] == "assistant-skill-greeter 0.2.0"
        run = client.post("/api/skills/greet/run", json={"args": {"name": "Grace"}})
        assert run.json()["text"] == "Hello, Grace! It is 12:00 here."
        for text, answer in [
            ("/greet Linus", "Hello, Linus! It is 12:00 here."),
            ("/hello Ada", "Hello, Ada! It is 12:00 here."),  # its declared slash command
            ("Please say hello to Margaret!", "Hello, Margaret! It is 12:00 here."),  # its declared phrase
            ("say hello", "Hello, friend! It is 12:00 here."),
            ("How is the moon?", "The moon is still there."),
            ("what time is it?", "It's 12:00 PM (12:00) on Thursday, 15 January 2026, time zone UTC."),
        ]:
            chat = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": text}]})
            assert chat.json()["choices"][0]["message"]["content"] == answer, text
        assert listed["greet"]["slash"] == "/hello"
        assert listed["greet"]["phrases"] == ["say hello", "say hello to {name}", "greet {name}"]
        items = list(listed.values())
        grammar = skill_phrases(items)
        assert "say hello" in grammar and "how is the moon" in grammar and "run greet" in grammar
        assert skill_for("say hello", items) == "greet" and skill_for("how is the moon", items) == "moon"
        assert skill_for("what time is it", items) == "time"  # the built-in loaded first keeps its phrase
