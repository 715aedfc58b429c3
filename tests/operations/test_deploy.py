"""deploy/: the systemd unit as install.sh renders it (user and system kinds) passes `systemd-analyze verify`
with no complaint and keeps its hardening; every deploy/*.sh passes shellcheck. Each tool is skipped, with
the reason, where it is not installed (deploy/system-deps.sh installs both on Debian)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SCRIPTS = sorted(DEPLOY.glob("*.sh"))
HARDENING = {
    "NoNewPrivileges": "yes",
    "PrivateTmp": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "read-only",
    "Restart": "on-failure",
}


def render(kind: str, data_dir: Path) -> str:
    args = ["bash", str(DEPLOY / "install.sh"), "--print-unit", f"--{kind}", "--data-dir", str(data_dir)]
    if kind == "system":
        args += ["--run-as", "daemon"]  # a user every Debian system has (the unit refuses root)
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def keys(unit: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in unit.splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


@pytest.mark.parametrize("kind", ["user", "system"])
def test_rendered_unit_is_hardened_and_writes_only_the_data_dir(kind: str, tmp_path: Path) -> None:
    unit = render(kind, tmp_path / "data")
    k = keys(unit)
    assert not [line for line in unit.splitlines() if "@" in line and not line.startswith("#")]  # all filled in
    for key, value in HARDENING.items():
        assert k[key] == [value], key
    assert k["ReadWritePaths"] == [str(tmp_path / "data")]
    assert f"ASSISTANT_DATA_DIR={tmp_path / 'data'}" in k["Environment"]
    assert k["MemoryMax"][0].endswith("M") and int(k["MemoryMax"][0][:-1]) > 0
    assert k["ExecStart"] == [f"{ROOT}/.venv/bin/assistant serve"]
    assert not any("OFFLINE" in e for e in k["Environment"])
    assert ("User" in k) == (kind == "system")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed (apt-get install systemd)")
@pytest.mark.parametrize("kind", ["user", "system"])
def test_systemd_analyze_verify(kind: str, tmp_path: Path) -> None:
    if not (ROOT / ".venv" / "bin" / "assistant").exists():
        pytest.skip("no .venv/bin/assistant for the unit's ExecStart (run `make install`)")
    (tmp_path / "data").mkdir()
    unit_dir = tmp_path / "units"
    unit_dir.mkdir()
    unit = unit_dir / "assistant.service"
    unit.write_text(render(kind, tmp_path / "data"))
    runtime = tmp_path / "runtime"  # a user manager needs a runtime dir, even just to verify
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "SYSTEMD_LOG_COLOR": "0"}
    cmd = ["systemd-analyze", *(["--user"] if kind == "user" else []), "verify", str(unit)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    said = (done.stdout + done.stderr).strip()
    assert done.returncode == 0 and said == "", said  # verify only warns about a bad value: none allowed


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed (apt-get install shellcheck)")
@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_shellcheck(script: Path) -> None:
    done = subprocess.run(["shellcheck", "--severity=style", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_install_help_and_bad_option() -> None:
    help_text = subprocess.run(
        ["bash", str(DEPLOY / "install.sh"), "--help"], check=True, capture_output=True, text=True
    ).stdout
    assert "--system" in help_text and "without AVX" in help_text and "aarch64" in help_text
    bad = subprocess.run(["bash", str(DEPLOY / "install.sh"), "--bogus"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown option" in bad.stderr
