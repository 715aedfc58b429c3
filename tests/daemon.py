"""Run the real daemon (`python -m assistant serve`) as a subprocess on a free loopback port (tests, benchmarks)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Daemon:
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)


def stop(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Stop a daemon as a service manager does: SIGTERM, and SIGKILL when it has not ended in ``timeout``."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log_path: Path, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"daemon exited with {proc.returncode}:\n{log_path.read_text(errors='replace')}"
            )
        try:
            if httpx.get(url + "/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)  # polling a starting process, not waiting for time to pass
    raise RuntimeError(
        f"daemon did not become healthy in {timeout}s:\n{log_path.read_text(errors='replace')}"
    )


@contextmanager
def start_daemon(
    data_dir: Path,
    *,
    port: int | None = None,
    env: dict[str, str] | None = None,
    config_toml: str | None = None,
    args: list[str] | None = None,
) -> Iterator[Daemon]:
    """Start `assistant serve` with its own data dir; yields once /healthz answers; stops it after."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    full_env.update({"ASSISTANT_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    cmd = [sys.executable, "-m", "assistant"]
    if config_toml is not None:
        cfg = data_dir / "config.toml"
        cfg.write_text(config_toml)
        cmd += ["--config", str(cfg)]
    cmd += ["serve", "--host", "127.0.0.1", "--port", str(port), *(args or [])]
    full_env.update(env or {})
    log_path = data_dir / f"daemon-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log_path)
        yield Daemon(url, port, proc, log_path)
    finally:
        stop(proc)
