"""The real llama.cpp backend on the bundled GGUF (slow: a few seconds of generation each)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import openai
import pytest

from assistant.config import ModelSettings
from assistant.llm.model_file import bundled_model_path
from assistant.llm.types import ChatMessage, GenerationParams, collect
from tests.daemon import free_port, start_daemon

pytestmark = pytest.mark.slow

SYSTEM = ChatMessage("system", "You are a helpful assistant.")


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bundled_model_path(tmp_path_factory.mktemp("models"), "smollm2")


@pytest.fixture(scope="module")
def backend(model_path: Path):  # type: ignore[no-untyped-def]
    from assistant.llm.llama import LlamaBackend

    b = LlamaBackend.load(model_path, ModelSettings(n_ctx=1024, prompt_cache_mb=64))
    yield b
    b.close()


def run(backend, messages, **kw):  # type: ignore[no-untyped-def]
    return collect(
        backend.stream_chat(messages, GenerationParams(**{"temperature": 0.0, **kw}), threading.Event())
    )


def test_default_model_chats_out_of_the_box(backend) -> None:  # type: ignore[no-untyped-def]
    """The bundled default is instruction-tuned and uses the chat template inside its GGUF file."""
    assert backend.template == "gguf-template"
    out = run(backend, [SYSTEM, ChatMessage("user", "What is the capital of France?")], max_tokens=24)
    assert "Paris" in out.text
    assert "capital of France?" not in out.text  # it answers; it does not echo the prompt


def test_gemma_base_model_is_the_documented_alternative(tmp_path_factory: pytest.TempPathFactory) -> None:
    from assistant.llm.llama import LlamaBackend

    b = LlamaBackend.load(bundled_model_path(tmp_path_factory.mktemp("gemma"), "gemma3"), ModelSettings(n_ctx=512))
    try:
        assert b.template == "fallback:gemma"  # a base model: no chat template in the file
        out = run(b, [SYSTEM, ChatMessage("user", "Name three colours.")], max_tokens=8)
        assert out.usage.completion_tokens > 0
    finally:
        b.close()


def test_generates_text_with_exact_usage(backend) -> None:  # type: ignore[no-untyped-def]
    out = run(backend, [SYSTEM, ChatMessage("user", "Name three colours.")], max_tokens=24)
    assert out.text.strip()
    assert out.finish_reason in ("stop", "length")
    assert 0 < out.usage.completion_tokens <= 24
    assert out.usage.prompt_tokens > 10
    assert "<|im_end|>" not in out.text and "<end_of_turn>" not in out.text


def test_same_seed_same_answer(backend) -> None:  # type: ignore[no-untyped-def]
    msgs = [SYSTEM, ChatMessage("user", "Tell me a word.")]
    a = run(backend, msgs, max_tokens=12, temperature=0.9, seed=7)
    b = run(backend, msgs, max_tokens=12, temperature=0.9, seed=7)
    assert a.text == b.text


def test_stop_sequence(backend) -> None:  # type: ignore[no-untyped-def]
    out = run(backend, [SYSTEM, ChatMessage("user", "Count: 1, 2, 3, 4, 5, 6")], max_tokens=40, stop=(",",))
    assert "," not in out.text


def test_follow_up_turn_reuses_the_prompt_cache(backend) -> None:  # type: ignore[no-untyped-def]
    first = [SYSTEM, ChatMessage("user", "My cat is called Miso. Say hello to her.")]
    a = run(backend, first, max_tokens=16)
    follow = [*first, ChatMessage("assistant", a.text), ChatMessage("user", "What is my cat called?")]
    run(backend, follow, max_tokens=8)
    assert backend.last_reused_tokens >= a.usage.prompt_tokens - 1
    # Another conversation in between, then back: the saved state serves the old prefix.
    run(backend, [SYSTEM, ChatMessage("user", "Something else entirely about the weather.")], max_tokens=8)
    again = [*follow, ChatMessage("assistant", "Miso."), ChatMessage("user", "And her age?")]
    run(backend, again, max_tokens=4)
    assert backend.last_reused_tokens >= a.usage.prompt_tokens - 1


def test_cancel_stops_generation(backend) -> None:  # type: ignore[no-untyped-def]
    cancel = threading.Event()
    n = 0
    deltas = []
    for d in backend.stream_chat(
        [SYSTEM, ChatMessage("user", "Write a long story.")], GenerationParams(max_tokens=200), cancel
    ):
        deltas.append(d)
        if d.text:
            n += 1
            if n == 3:
                cancel.set()
    assert n >= 3, "the model stopped before the cancel"
    finished = [d for d in deltas if d.finish_reason]
    assert len(finished) == 1 and finished[0] is deltas[-1]  # exactly one final delta, at the end
    assert finished[0].finish_reason == "cancelled"
    assert finished[0].usage is not None and finished[0].usage.completion_tokens <= 4


def test_prompt_longer_than_context_is_trimmed_or_refused(backend) -> None:  # type: ignore[no-untyped-def]
    from assistant.core.errors import BadRequest

    long_history = [SYSTEM] + [
        ChatMessage("user" if i % 2 == 0 else "assistant", "word " * 100) for i in range(20)
    ]
    out = run(backend, [*long_history, ChatMessage("user", "Hi")], max_tokens=4)  # old turns dropped to fit
    assert out.usage.prompt_tokens <= 1024
    with pytest.raises(BadRequest, match="context"):
        run(backend, [SYSTEM, ChatMessage("user", "word " * 2000)], max_tokens=4)


def test_daemon_end_to_end_with_openai_client_and_cli(tmp_path: Path, model_path: Path) -> None:
    toml = f'[model]\npath = "{model_path}"\nn_ctx = 1024\nmax_tokens = 24\n[memory]\nenabled = false\n[scheduler]\nenabled = false\n'
    with start_daemon(tmp_path / "d", config_toml=toml) as d:
        client = openai.OpenAI(base_url=d.url + "/v1", api_key="unused")
        r = client.chat.completions.create(
            model="x", messages=[{"role": "user", "content": "Say hi."}], max_tokens=16
        )
        assert r.choices[0].message.content
        assert r.usage and r.usage.completion_tokens > 0
        cid = r.model_extra["conversation_id"]
        pieces = []
        for chunk in client.chat.completions.create(
            model="x",
            messages=[{"role": "user", "content": "Again."}],
            stream=True,
            max_tokens=16,
            extra_body={"conversation_id": cid},
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
        assert "".join(pieces).strip()
        assert len(client._client.get(d.url + f"/api/conversations/{cid}").json()["messages"]) == 4
        ask = subprocess.run(
            [sys.executable, "-m", "assistant", "ask", "--url", d.url, "--max-tokens", "8", "Hello?"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert ask.returncode == 0, ask.stderr
        assert ask.stdout.strip()
    dead = subprocess.run(
        [sys.executable, "-m", "assistant", "ask", "--url", f"http://127.0.0.1:{free_port()}", "Hello?"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dead.returncode != 0
    assert "not running" in dead.stderr


def test_serve_refuses_bad_model_and_open_host(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_text("hello")
    env = {"ASSISTANT_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    r = subprocess.run(
        [sys.executable, "-m", "assistant", "serve", "--model", str(bad)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 2
    assert "not a GGUF file" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "assistant", "serve", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 2
    assert "without an API token" in r.stderr
    cfg = tmp_path / "c.toml"
    cfg.write_text("[server]\nport = 'x'\n")
    r = subprocess.run(
        [sys.executable, "-m", "assistant", "--config", str(cfg), "serve"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "assistant: server.port: Input should be a valid integer, unable to parse string as an integer (got 'x')"
    ]
