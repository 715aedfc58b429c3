"""A third-party notification channel: a small package with an ``assistant.channels`` entry point, really
built and installed by pip (offline: --no-deps --no-build-isolation) into a directory of its own that is put
on sys.path, as tests/skills/test_entry_points.py does for skills. Configured by its own
``[notify.channels.memo]`` table, it is picked up by the notifier through the plugin path and receives a
notification; a package trying to take a built-in's name is refused."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.config import load_settings
from assistant.core import plugins
from assistant.core.errors import ConfigError
from assistant.notify import build_notifier
from tests.fakes import FixedClock

PYPROJECT = """
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "assistant-channel-memo"
version = "0.3.0"

[tool.setuptools]
py-modules = ["memo_channel"]

[project.entry-points."assistant.channels"]
memo = "memo_channel:memo_channel"
webhook = "memo_channel:memo_channel"
"""

MODULE = """
import json
from pathlib import Path

from assistant.notify.channel import read_options


class MemoChannel:
    name = "memo"
    max_attempts = 0

    def __init__(self, path: Path, prefix: str) -> None:
        self.path = path
        self.prefix = prefix

    def send(self, notification) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"memo": self.prefix, **notification.to_json()}) + "\\n")

    def close(self) -> None:
        pass


def memo_channel(notify, options):
    opts = read_options(options, {"path": str, "prefix": str})
    if "path" not in opts:
        return None
    return MemoChannel(Path(opts["path"]), opts.get("prefix", "memo"))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("channel-plugin")
    src = root / "src"
    src.mkdir()
    (src / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    (src / "memo_channel.py").write_text(MODULE)
    target = root / "site"
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
           "--no-index", "--target", str(target), str(src)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert list(target.glob("assistant_channel_memo-0.3.0.dist-info/entry_points.txt"))
    return target


@pytest.fixture
def on_path(installed: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(installed))
    yield installed
    sys.modules.pop("memo_channel", None)


def test_the_installed_channel_is_listed_after_the_builtins(on_path: Path) -> None:
    found = plugins.find(plugins.CHANNELS)
    assert found.names() == ["desktop", "ntfy", "webhook", "memo"]
    assert found.get("memo").origin == "assistant-channel-memo 0.3.0"  # type: ignore[union-attr]
    assert found.get("webhook").origin == "builtin"  # type: ignore[union-attr]
    assert (
        "'webhook' (memo_channel:memo_channel) from assistant-channel-memo 0.3.0 ignored: builtin"
        in (found.errors[0])
    )


def test_a_third_party_channel_receives_a_notification(on_path: Path, tmp_path: Path) -> None:
    received = tmp_path / "memo.jsonl"
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'data_dir = "{tmp_path / "data"}"\n[notify]\ndesktop = false\n'
        f'[notify.channels.memo]\npath = "{received}"\nprefix = "from-config"\n'
    )
    settings = load_settings(cfg)
    clock = FixedClock()
    notifier = build_notifier(settings, clock)
    try:
        assert notifier.channel_names == ["memo"]
        sent = notifier.notify("Plugged in", "through the plugin path", source="test", data={"n": 1})
        report = notifier.deliver_due()
        assert report.delivered == {"memo": 1}
        (line,) = received.read_text(encoding="utf-8").splitlines()
        got = json.loads(line)
        assert (got["memo"], got["id"], got["title"], got["data"]) == (
            "from-config",
            sent.id,
            "Plugged in",
            {"n": 1},
        )
        status = notifier.get(sent.id)
        assert (
            status is not None and status.to_json()["delivery"]["channels"]["memo"]["status"] == "delivered"
        )
    finally:
        notifier.close()


def test_an_installed_channel_without_its_table_is_off(on_path: Path, tmp_path: Path) -> None:
    notifier = build_notifier(load_settings(None, data_dir=tmp_path, notify={"desktop": False}), FixedClock())
    try:
        assert notifier.channel_names == []
    finally:
        notifier.close()


def test_a_bad_option_of_the_plugin_stops_the_start(on_path: Path, tmp_path: Path) -> None:
    settings = load_settings(
        None, data_dir=tmp_path, notify={"desktop": False, "channels": {"memo": {"path": 3}}}
    )
    with pytest.raises(ConfigError, match=r"notify\.channels\.memo: option 'path' must be str \(got 3\)"):
        build_notifier(settings, FixedClock())


def test_without_the_package_its_name_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'memo' is installed \(installed: desktop, ntfy, webhook\)"):
        load_settings(None, data_dir=tmp_path, notify={"channels": {"memo": {"path": "x"}}})
