"""`assistant doctor`: what the daemon would use (model size, threads, context, data dir and disk, memory
count, schedules with their next runs, channels), memory as PSS/USS beside RSS (the running daemon's, by the
pid in /healthz, else the doctor's own), and what will not fit: each failing check makes the exit code 1."""

from __future__ import annotations

import json
import os
from collections import namedtuple
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

from assistant.app import create_app
from assistant.cli import main
from assistant.cli.doctor import diagnose, exit_code
from assistant.config import Settings, load_settings
from assistant.services import build_services
from tests.daemon import free_port
from tests.fakes import FakeLLM, FixedClock
from tests.memory_fakes import HashingEmbedder
from tests.server import serve_app


def fake_gguf(path: Path, size: int = 4096) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + b"\0" * (size - 8))
    return path


def doctor_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings of a daemon that is not running (a free port), on a small fake model file."""
    overrides.setdefault("server", {"port": free_port()})
    overrides.setdefault("model", {"path": str(fake_gguf(tmp_path / "m.gguf"))})
    return load_settings(None, data_dir=tmp_path / "data", **overrides)


def checks(report: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report["checks"]}


def test_report_on_a_fresh_data_dir(tmp_path: Path) -> None:
    report = diagnose(doctor_settings(tmp_path))
    assert report["model"]["bytes"] == 4096 and report["model"]["path"].endswith("m.gguf")
    assert report["threads"] >= 1 and report["context"] == 4096
    assert report["daemon"]["running"] is False
    assert report["memories"] == 0 and report["schedules"] == []
    assert report["channels"][0] == "sse"
    assert report["data_dir"]["disk_free"] > 0
    mem = report["process_memory"]
    assert mem["pid"] == os.getpid() and mem["of"].startswith("doctor")
    assert 0 < mem["uss"] <= mem["pss"] <= mem["rss"]
    assert {"model": "ok", "ram": "ok", "disk": "ok", "bind": "ok"}.items() <= checks(report).items()
    assert exit_code(report) == 0


def test_what_will_not_fit_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = doctor_settings(tmp_path, server={"host": "0.0.0.0", "port": free_port()})
    vm = psutil.virtual_memory()
    monkeypatch.setattr(psutil, "virtual_memory", lambda: vm._replace(available=1000))
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr("shutil.disk_usage", lambda _: Usage(100 * 1024**3, 99 * 1024**3, 512 * 1024**2))
    report = diagnose(settings)
    got = checks(report)
    assert got["bind"] == "fail" and got["ram"] == "fail" and got["disk"] == "fail"
    assert "api_token" in next(c["detail"] for c in report["checks"] if c["name"] == "bind")
    assert exit_code(report) == 1

    missing = diagnose(doctor_settings(tmp_path, model={"path": str(tmp_path / "none.gguf")}))
    assert checks(missing)["model"] == "fail" and exit_code(missing) == 1

    # 5 % of a large disk is still too little, even with more than 1 GB free
    monkeypatch.setattr("shutil.disk_usage", lambda _: Usage(1000 * 1024**3, 960 * 1024**3, 40 * 1024**3))
    monkeypatch.setattr(psutil, "virtual_memory", lambda: vm)
    assert checks(diagnose(doctor_settings(tmp_path)))["disk"] == "fail"


def test_missing_system_packages_warn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda _: None)
    monkeypatch.setattr("ctypes.util.find_library", lambda _: None)
    report = diagnose(doctor_settings(tmp_path))
    got = checks(report)
    assert got["voice: espeak-ng"] == got["voice: libportaudio2"] == got["notify-send"] == "warn"
    assert "desktop (no notify-send)" in report["channels"]
    assert exit_code(report) == 0 and exit_code(report, strict=True) == 1


def test_asks_the_running_daemon_and_reports_its_memory(tmp_path: Path) -> None:
    daemon_settings = load_settings(None, data_dir=tmp_path / "daemon", memory={"enabled": True})
    services = build_services(daemon_settings, clock=FixedClock(), llm=FakeLLM(), embedder=HashingEmbedder())
    assert services.memory is not None
    services.memory.add("the boiler was serviced in March")
    with serve_app(create_app(services)) as url:
        assert services.scheduler is not None
        added = services.scheduler.add("time", "every day at 8")
        settings = doctor_settings(tmp_path, server={"port": int(url.rsplit(":", 1)[1])})
        report = diagnose(settings)
    assert report["daemon"] == {"url": url, "running": True, "pid": os.getpid()}
    assert report["memories"] == 1
    assert report["schedules"] == [
        {"id": added.id, "name": "time: every day at 8", "next_run": added.next_run_time}
    ]
    mem = report["process_memory"]
    assert mem["of"] == "daemon" and mem["pid"] == os.getpid() and mem["pss"] <= mem["rss"]


def test_reads_schedules_from_the_job_store_when_no_daemon_runs(tmp_path: Path) -> None:
    settings = doctor_settings(tmp_path, memory={"enabled": False})
    services = build_services(settings, clock=FixedClock(), llm=FakeLLM())
    assert services.scheduler is not None
    a = services.scheduler.add("time", "every day at 8", timezone="Europe/Berlin")
    b = services.scheduler.add("time", "every 15 minutes")
    services.scheduler.pause(b.id)
    services.close()
    got = {s["id"]: s for s in diagnose(settings)["schedules"]}
    assert got[b.id]["next_run"] is None
    assert datetime.fromisoformat(got[a.id]["next_run"]) == datetime.fromisoformat(a.next_run_time)
    assert got[a.id]["name"] == "time: every day at 8"


def test_cli_json_table_and_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ASSISTANT_MODEL__PATH", str(fake_gguf(tmp_path / "m.gguf")))
    monkeypatch.setenv("ASSISTANT_SERVER__PORT", str(free_port()))
    assert main(["doctor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"]["bytes"] == 4096 and "pss" in report["process_memory"]
    assert main(["doctor"]) == 0
    table = capsys.readouterr().out
    assert "What the daemon uses" in table and "PSS" in table and "USS" in table and "Checks" in table
    monkeypatch.setenv("ASSISTANT_SERVER__HOST", "0.0.0.0")
    assert main(["doctor"]) == 1
    assert "FAIL" in capsys.readouterr().out
