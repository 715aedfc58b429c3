"""`assistant skills ...` and `assistant schedule ...` against a real HTTP daemon app on 127.0.0.1."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.app import create_app
from assistant.cli import main
from assistant.config import load_settings
from assistant.services import build_services
from tests.fakes import FakeLLM, FixedClock, RecordingNotifier
from tests.server import serve_app


@pytest.fixture
def config(tmp_path: Path) -> Iterator[str]:
    settings = load_settings(
        None, data_dir=tmp_path / "data", memory={"enabled": False}, notify={"enabled": False},
        timezone="Europe/Berlin", server={"api_token": "s3cret"},
    )  # fmt: skip
    services = build_services(settings, clock=FixedClock(), llm=FakeLLM("no"), notifier=RecordingNotifier())
    with serve_app(create_app(services)) as url:
        port = url.rsplit(":", 1)[1]
        cfg = tmp_path / "config.toml"
        cfg.write_text(f'[server]\nport = {port}\napi_token = "s3cret"\n')
        yield str(cfg)


def test_skills_cli(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", config, "skills", "list"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^time\s+Tell the current local time", out, re.MULTILINE)
    assert "args: tz=… phrase=True" in out
    assert (
        main(["--config", config, "skills", "run", "time", "--tz", "Asia/Tokyo", "--arg", "phrase=no"]) == 0
    )
    assert capsys.readouterr().out.startswith("It's 9:00 PM (21:00) on Thursday, 15 January 2026")
    assert main(["--config", config, "skills", "run", "time", "--arg", "colour"]) == 2
    assert "--arg 'colour': expected KEY=VALUE" in capsys.readouterr().err
    assert main(["--config", config, "skills", "run", "weather"]) == 2
    assert "no skill named 'weather'" in capsys.readouterr().err


def test_schedule_cli(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    cmd = ["--config", config, "schedule"]
    assert (
        main([*cmd, "add", "time", "every weekday at 7:30", "--tz", "America/New_York", "--arg", "phrase=no"])
        == 0
    )
    out = capsys.readouterr().out
    m = re.match(r"added ([0-9a-f]{12})  time phrase=no  'every weekday at 7:30' = every weekday at 07:30 "
                 r"\(cron 30 7 \* \* 1-5\) \(America/New_York\)  next \S+-0[45]:00", out)  # fmt: skip
    assert m, out
    sid = m.group(1)
    assert main([*cmd, "add", "digest", "every 15 minutes"]) == 0
    assert "= every 15 minutes (Europe/Berlin)" in capsys.readouterr().out
    assert main([*cmd, "list"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2
    assert main([*cmd, "pause", sid]) == 0 and capsys.readouterr().out.rstrip().endswith("paused")
    assert main([*cmd, "resume", sid]) == 0 and " next " in capsys.readouterr().out
    assert main([*cmd, "run", sid]) == 0
    assert capsys.readouterr().out.startswith("It's 7:00 AM (07:00) on Thursday, 15 January 2026")
    assert main([*cmd, "runs", sid]) == 0 and " ok " in capsys.readouterr().out
    assert main([*cmd, "remove", sid]) == 0 and capsys.readouterr().out.strip() == f"removed {sid}"
    assert main([*cmd, "add", "time", "once in a blue moon"]) == 2
    assert "cannot understand the schedule 'once in a blue moon'" in capsys.readouterr().err
    assert main([*cmd, "pause", sid]) == 2
    assert f"no schedule '{sid}'" in capsys.readouterr().err


def test_cli_without_a_daemon(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.daemon import free_port

    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[server]\nport = {free_port()}\n")
    assert main(["--config", str(cfg), "schedule", "list"]) == 2
    assert "the daemon is not running" in capsys.readouterr().err
