"""`assistant doctor` shows the threads and batch chosen for the machine and why, and the prompt states kept
on disk (issue 28)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.cli import main
from assistant.cli.doctor import diagnose
from assistant.core.threads import choose_threads
from tests.cli.test_doctor import doctor_settings


def test_the_machines_choice_and_why(tmp_path: Path) -> None:
    report = diagnose(doctor_settings(tmp_path))
    assert report["threads"] == choose_threads().value
    assert report["threads_why"] == choose_threads().reason
    assert "CPU(s) this process may run on" in report["threads_why"]
    assert report["batch"] in (256, 512) and "prefill" in report["batch_why"]
    states = report["prompt_states"]
    assert states["files"] == 0 and states["path"].endswith("prompt-states") and states["limit"] == 64 << 20


def test_a_configured_thread_count_wins_and_says_so(tmp_path: Path) -> None:
    model = {"path": str(tmp_path / "m.gguf"), "n_threads": 7, "n_batch": 128}
    doctor_settings(tmp_path)  # writes the fake model file
    report = diagnose(doctor_settings(tmp_path, model=model))
    assert report["threads"] == 7 and report["threads_why"].startswith("set by model.n_threads")
    assert report["batch"] == 128 and report["batch_why"] == "set by model.n_batch"


def test_the_table_shows_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = doctor_settings(tmp_path)
    states = settings.data_dir / "prompt-states"
    states.mkdir(parents=True)
    (states / "a.state").write_bytes(b"x" * 2048)
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ASSISTANT_MODEL__PATH", str(settings.model.path))
    monkeypatch.setenv("ASSISTANT_SERVER__PORT", str(settings.server.port))
    main(["doctor"])
    out = capsys.readouterr().out
    assert "threads: why" in out and "prompt batch" in out
    assert "prompt states" in out and "1 file(s)" in out
