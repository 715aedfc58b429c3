"""Feedback and personas from the clients, against a real server on 127.0.0.1 (fake model, memory with the
hashing embedder): the DaemonClient's ``rate``/``personas``, the terminal's /good, /bad and /persona
helpers, and `assistant memory feedback [--undo ID]`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.app import create_app
from assistant.cli import main
from assistant.cli.client import rate_answer, remember_persona
from assistant.client.daemon import DaemonClient, DaemonError
from assistant.config import load_settings
from assistant.services import Services, build_services
from tests.fakes import FakeLLM, FixedClock
from tests.memory_fakes import HashingEmbedder
from tests.server import serve_app


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[str, Services]]:
    settings = load_settings(
        None, data_dir=tmp_path / "data", memory={"enabled": True}, scheduler={"enabled": False},
        notify={"desktop": False},
    )  # fmt: skip
    llm = FakeLLM(lambda msgs: "The key is under the blue flowerpot.")  # uses the note: a rating moves it
    services = build_services(settings, clock=FixedClock(), llm=llm, embedder=HashingEmbedder())
    assert services.memory is not None
    services.memory.add("The spare key is under the blue flowerpot", "note")
    with serve_app(create_app(services)) as url:
        yield url, services


def test_rate_the_last_answer_then_list_and_undo_from_the_cli(
    daemon: tuple[str, Services], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, services = daemon
    with DaemonClient(url) as client:
        with pytest.raises(DaemonError, match="no answer"):
            client.rate(True)
        "".join(client.stream("where is the spare key?"))
        assert client.last_turn_id is not None
        said = rate_answer(client, good=False)
        assert said.startswith("rated bad: 1 memory") and "demoted" in said and "--undo 1" in said
        client.new_conversation()
        assert rate_answer(client, good=True) == "not rated: there is no answer to rate yet"
        client.ask("hello")  # nothing recalled into this one
        assert "no memories were recalled" in rate_answer(client, good=True)

    port = url.rsplit(":", 1)[1]
    cfg = tmp_path / "cli.toml"
    cfg.write_text(f"[server]\nport = {port}\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["--config", str(cfg), "memory", "feedback"]) == 0
    out = capsys.readouterr().out
    assert "#1" in out and "demoted" in out and "The spare key is under the blue flowerpot" in out
    assert "(2 of 2 ratings" in out
    assert main(["--config", str(cfg), "memory", "feedback", "--undo", "1"]) == 0
    assert "undid rating 1" in capsys.readouterr().out
    assert main(["--config", str(cfg), "memory", "feedback", "--undo", "1"]) == 1
    assert "no rating 1" in capsys.readouterr().err
    assert services.memory is not None and services.memory.feedback is not None
    assert services.memory.feedback.count() == 1


def test_persona_from_the_client(daemon: tuple[str, Services]) -> None:
    url, services = daemon
    with DaemonClient(url) as client:
        assert {p["name"] for p in client.personas()} == {"helpful", "terse", "grumpy"}
        remember_persona(client, "/persona pirate")
        assert client.persona is None  # unknown: the daemon says so in its answer
        remember_persona(client, "/persona grumpy")
        answer = "".join(client.stream("/persona grumpy"))
        assert "grumpy" in answer and client.persona == "grumpy"
        client.new_conversation()
        client.ask("hi")  # a new conversation keeps the client's persona
        assert services.conversations.persona(str(client.conversation_id)) == "grumpy"


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)")
def test_good_bad_and_persona_in_the_terminal(daemon: tuple[str, Services], tmp_path: Path) -> None:
    from tests.cli.test_client import _wait_for

    url, services = daemon
    session = "assistant-rate-" + uuid.uuid4().hex[:8]
    cmd = f"HOME={tmp_path} {sys.executable} -m assistant chat --url {url} --no-notifications; sleep 600"  # the pane outlives the client: its last lines stay readable
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "30", cmd], check=True)

    def typed(text: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", session, text, "Enter"], check=True)

    try:
        _wait_for(session, "you>")
        typed("/good")
        _wait_for(session, "not rated: there is no answer to rate yet")
        typed("where is the spare key?")
        _wait_for(session, "The key is under the blue flowerpot.")
        typed("/bad")
        _wait_for(session, "rated bad: 1 memory the answer used will be demoted")
        typed("/persona grumpy")
        _wait_for(session, "Persona for this conversation: grumpy.")
        typed("/quit")
        screen = _wait_for(session, "conversation id: conv-")
        conversation_id = screen.split("conversation id: ")[1].split()[0]
        assert services.conversations.persona(conversation_id) == "grumpy"
        assert services.memory is not None and services.memory.feedback is not None
        assert [r.good for r in services.memory.feedback.ratings()] == [False]
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
