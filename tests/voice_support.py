"""Helpers for the voice tests: speech from espeak-ng, and an app served by uvicorn on a loopback port."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.daemon import free_port


def need_espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        pytest.skip("espeak-ng is not installed (sudo apt-get install espeak-ng, or bash deploy/system-deps.sh)")
    return exe


def need_pocketsphinx() -> None:
    pytest.importorskip("pocketsphinx", reason="pocketsphinx is not installed (pip install pocketsphinx)")


def speak_to_wav(text: str, path: Path, *, voice: str = "en-us", speed: int = 160) -> Path:
    """espeak-ng reads ``text`` into a WAV file (22050 Hz mono), as a user would say it to the microphone."""
    exe = need_espeak()
    subprocess.run([exe, "-v", voice, "-s", str(speed), "-w", str(path), text], check=True, capture_output=True)
    return path


@contextmanager
def serve(app: object) -> Iterator[str]:
    """Run an ASGI app with uvicorn in a thread on 127.0.0.1; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                           timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            thread.join(0.02)  # polling a starting server, not waiting for time to pass
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
