"""The terminal clients against a real server on 127.0.0.1 (fake model): `assistant chat` driven in tmux as a
person would use it, and `assistant ask`. The DaemonClient they use is tested in cli/test_daemon_client.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assistant.app import create_app
from assistant.cli import main
from assistant.config import load_settings
from assistant.services import build_services
from tests.daemon import free_port
from tests.fakes import FakeLLM, FixedClock
from tests.server import serve_app


@pytest.fixture
def daemon_url(tmp_path: Path) -> Iterator[str]:
    settings = load_settings(
        None,
        data_dir=tmp_path / "data",
        memory={"enabled": False},
        scheduler={"enabled": False},
        notify={"desktop": False},
    )
    llm = FakeLLM(lambda msgs: f"You said: {msgs[-1].content}")
    with serve_app(create_app(build_services(settings, clock=FixedClock(), llm=llm))) as url:
        yield url


def test_ask_prints_the_answer_and_continues_a_conversation(
    daemon_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ask", "--url", daemon_url, "hello", "there"]) == 0
    assert capsys.readouterr().out == "You said: hello there\n"
    cid = httpx.get(f"{daemon_url}/api/conversations").json()["data"][0]["id"]
    assert main(["ask", "--url", daemon_url, "--conversation", cid, "--max-tokens", "2", "again"]) == 0
    assert capsys.readouterr().out == "You said:\n"
    turns = httpx.get(f"{daemon_url}/api/conversations/{cid}").json()["messages"]
    assert [t["content"] for t in turns] == ["hello there", "You said: hello there", "again", "You said:"]


def test_ask_without_a_daemon(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["ask", "--url", url, "hello"]) == 3
    err = capsys.readouterr().err
    assert err == f"assistant: the daemon is not running at {url} (start it with `assistant serve`)\n"


def _pane(session: str) -> str:
    return subprocess.run(
        ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
    ).stdout


def _wait_for(session: str, text: str, timeout: float = 90.0, count: int = 1) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        screen = _pane(session)
        if screen.count(text) >= count:
            return screen
        time.sleep(0.1)  # polling the terminal, not waiting for time to pass
    raise AssertionError(f"{text!r} never appeared:\n{_pane(session)}")


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)")
def test_assistant_chat_in_a_terminal(daemon_url: str, tmp_path: Path) -> None:
    session = "assistant-chat-" + uuid.uuid4().hex[:8]
    cmd = f"HOME={tmp_path} {sys.executable} -m assistant chat --url {daemon_url}; sleep 600"  # the pane outlives the client: its last lines stay readable
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "30", cmd], check=True)
    try:
        _wait_for(session, "you>")
        subprocess.run(["tmux", "send-keys", "-t", session, "hello there", "Enter"], check=True)
        _wait_for(session, "You said: hello there")
        httpx.post(
            f"{daemon_url}/api/notifications",
            json={"title": "Digest ready", "body": "3 new items", "source": "t"},
        )
        _wait_for(session, "Digest ready")
        # History at the prompt: Up recalls the last line.
        subprocess.run(["tmux", "send-keys", "-t", session, "Up", "Enter"], check=True)
        screen = _wait_for(session, "You said: hello there", count=2)
        assert "HTTP Request" not in screen  # no log noise in the conversation
        assert "[bold" not in screen  # markup is rendered, not shown
        subprocess.run(["tmux", "send-keys", "-t", session, "/quit", "Enter"], check=True)
        _wait_for(session, "conversation id: conv-")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)")
def test_ctrl_c_stops_the_answer_and_a_second_quits(tmp_path: Path) -> None:
    """Ctrl-C during a streamed answer stops that answer (the daemon cancels the generation and its worker
    answers the next question); the client stays at the prompt; Ctrl-C at the prompt quits."""
    import threading

    settings = load_settings(
        None, data_dir=tmp_path / "data", memory={"enabled": False}, scheduler={"enabled": False},
        notify={"desktop": False},
    )  # fmt: skip
    gate = threading.Semaphore(0)
    llm = FakeLLM(lambda msgs: "word " * 200 + "END", gate=gate)
    session = "assistant-chat-" + uuid.uuid4().hex[:8]
    with serve_app(create_app(build_services(settings, clock=FixedClock(), llm=llm))) as url:
        cmd = f"HOME={tmp_path} {sys.executable} -m assistant chat --no-notifications --url {url}; sleep 600"
        subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "30", cmd], check=True)
        try:
            _wait_for(session, "you>")
            subprocess.run(["tmux", "send-keys", "-t", session, "tell me a long story", "Enter"], check=True)
            for _ in range(3):
                gate.release()
            _wait_for(session, "assistant> word word")
            subprocess.run(["tmux", "send-keys", "-t", session, "C-c"], check=True)
            screen = _wait_for(session, "(stopped")
            assert llm.cancelled.wait(30), "the daemon did not cancel the generation"
            assert "END" not in screen and "Traceback" not in screen
            _wait_for(session, "you>", count=2)  # back at the prompt, the client still running
            llm.reply = "Second answer."
            llm.gate = None
            subprocess.run(["tmux", "send-keys", "-t", session, "again", "Enter"], check=True)
            _wait_for(session, "Second answer.")  # the worker was freed
            subprocess.run(["tmux", "send-keys", "-t", session, "C-c"], check=True)
            screen = _wait_for(session, "conversation id: conv-")
            assert "Traceback" not in screen
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_no_library_log_lines_unless_verbose(daemon_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask", "--url", daemon_url, "hi"]) == 0
    assert "HTTP Request" not in capsys.readouterr().err
    from assistant.core.logs import configure_logging

    try:
        assert main(["--verbose", "ask", "--url", daemon_url, "hi"]) == 0
        assert "HTTP Request" in capsys.readouterr().err
    finally:
        configure_logging("INFO")  # the libraries quiet again for the tests that follow
