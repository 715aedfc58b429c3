"""Fitting a long history into the context: linear work, cancellable, on both backends (issue 9, hole 3).

No test here times anything: the work is counted (tokenize and format calls through spies). The time of a
3,000-turn fit is measured by benchmarks/bench_fit.py.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.testclient import TestClient

from assistant.config import ModelSettings
from assistant.core.errors import BadRequest
from assistant.llm.chat_templates import Prompt, format_gemma
from assistant.llm.fit import fit_messages
from assistant.llm.llama import LlamaBackend
from assistant.llm.remote import RemoteBackend, estimate_tokens, prompt_tokens
from assistant.llm.types import ChatMessage, GenerationParams, collect
from tests.fakes import FakeLLM
from tests.server import serve_app

SYSTEM = ChatMessage("system", "You are a helpful assistant.")
TURNS = 3000


def history(turns: int = TURNS, words: int = 12) -> list[ChatMessage]:
    msgs = [SYSTEM]
    for i in range(turns):
        msgs.append(
            ChatMessage("user" if i % 2 == 0 else "assistant", " ".join(f"w{i}x{j}" for j in range(words)))
        )
    return [*msgs, ChatMessage("user", "What did we say first?")]


def log2(n: int) -> int:
    return math.ceil(math.log2(max(n, 2)))


# -- the fitting algorithm --


def test_fit_measures_each_text_once_and_formats_log_n_times() -> None:
    msgs = history()
    text_calls: list[ChatMessage] = []
    prompt_calls: list[int] = []

    def text_cost(m: ChatMessage) -> int:
        text_calls.append(m)
        return len(m.content.split())

    def prompt_cost(kept: list[ChatMessage]) -> int:
        prompt_calls.append(len(kept))
        return sum(len(m.content.split()) + 3 for m in kept) + 1

    fitted = fit_messages(msgs, 1000, text_cost, prompt_cost, threading.Event(), context_note="n")
    assert fitted is not None
    formats, texts = len(prompt_calls), len(text_calls)
    kept = fitted.messages
    assert kept[0] == SYSTEM and kept[-1] == msgs[-1]
    assert kept[1].role == "user"  # the kept dialogue starts with a user turn
    assert kept == [SYSTEM, *msgs[len(msgs) - len(kept) + 1 :]]  # the newest turns, in order
    # The most that fits: one more (assistant, user) pair would not.
    assert prompt_cost(kept) <= 1000 < prompt_cost([SYSTEM, *msgs[-len(kept) - 1 :]])
    assert 10 < len(kept) < TURNS // 10
    assert texts <= 2 * len(kept) + 2  # texts older than the budget allows are never measured
    assert formats <= 2 + log2(len(kept))


def test_fit_keeps_everything_that_fits_with_one_format() -> None:
    msgs = history(6)
    calls: list[int] = []

    def prompt_cost(kept: list[ChatMessage]) -> int:
        calls.append(len(kept))
        return 10 * len(kept)

    fitted = fit_messages(msgs, 10_000, lambda m: 1, prompt_cost, threading.Event(), context_note="n")
    assert fitted is not None and fitted.messages == msgs and fitted.dropped == 0
    assert calls == [len(msgs)]


def test_fit_refuses_when_system_and_last_message_do_not_fit() -> None:
    msgs = [*history(10), ChatMessage("user", "word " * 500)]
    with pytest.raises(BadRequest, match="context") as err:
        fit_messages(
            msgs,
            100,
            lambda m: len(m.content.split()),
            lambda k: sum(len(m.content.split()) for m in k),
            threading.Event(),
            context_note="the context is 100 tokens",
        )
    assert err.value.code == "context_length_exceeded"


def test_fit_stops_when_cancelled() -> None:
    cancel = threading.Event()
    seen = []

    def text_cost(m: ChatMessage) -> int:
        seen.append(m)
        if len(seen) == 5:
            cancel.set()
        return 1

    assert fit_messages(history(), 10**9, text_cost, lambda k: len(k), cancel, context_note="n") is None
    assert len(seen) == 5


# -- the embedded backend, with a fake llama.cpp --


class FakeLlama:
    """Just enough of llama_cpp.Llama for fitting: whitespace tokens, ``<ctl>``-style pieces special."""

    def __init__(self, n_ctx: int = 2048, on_tokenize: Callable[[int], None] | None = None) -> None:
        self._n_ctx = n_ctx
        self.on_tokenize = on_tokenize
        self.tokenize_calls = 0
        self.generated = False

    def n_ctx(self) -> int:
        return self._n_ctx

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        self.tokenize_calls += 1
        if self.on_tokenize:
            self.on_tokenize(self.tokenize_calls)
        words = text.decode().split()
        return ([1] if add_bos else []) + [2 if special and w.startswith("<") else 3 for w in words]

    def generate(self, *a: Any, **kw: Any) -> Iterator[int]:
        self.generated = True
        raise AssertionError("a cancelled fit must not generate")


def spaced_gemma(messages: Sequence[ChatMessage]) -> Prompt:
    """Gemma's format with spaces around the control tokens, so the fake tokenizer counts them."""
    p = format_gemma(messages)
    return Prompt(
        tuple(
            part.replace("<", " <").replace(">", "> ") if isinstance(part, str) else part for part in p.parts
        ),
        p.stop,
    )


def fake_backend(
    n_ctx: int = 2048, on_tokenize: Callable[[int], None] | None = None
) -> tuple[LlamaBackend, FakeLlama, list[int]]:
    llm = FakeLlama(n_ctx, on_tokenize)
    formats: list[int] = []

    def formatter(messages: Sequence[ChatMessage]) -> Prompt:
        formats.append(len(messages))
        return spaced_gemma(messages)

    # The fake stands in for llama-cpp-python's Llama as the python loop uses it (the native loop needs a real context).
    return LlamaBackend(llm, "fake", formatter, "fake", ModelSettings(prompt_cache_mb=0, generation_loop="python")), llm, formats


def test_llama_backend_fits_3000_turns_with_linear_work() -> None:
    backend, llm, formats = fake_backend()
    msgs = history()
    fitted = backend._tokens(msgs, 64, threading.Event())
    assert fitted is not None
    tokens, stops = fitted
    assert stops == ("<end_of_turn>",)
    assert tokens[0] == 1 and tokens.count(1) == 1  # BOS once, in front
    assert len(tokens) + 64 <= 2048
    kept_turns = tokens.count(2) // 2  # two control tokens a turn
    assert kept_turns < TURNS // 10
    # Work: each kept message's text once, a few template pieces, O(log n) formats.
    assert llm.tokenize_calls <= 3 * kept_turns + 10
    assert len(formats) <= 2 + log2(TURNS)


def test_llama_backend_cancel_during_fit_ends_the_stream_without_generating() -> None:
    cancel = threading.Event()

    def on_tokenize(n: int) -> None:
        if n == 20:
            cancel.set()

    backend, llm, _ = fake_backend(on_tokenize=on_tokenize)
    out = collect(backend.stream_chat(history(), GenerationParams(max_tokens=8), cancel))
    assert out.finish_reason == "cancelled" and out.text == ""
    assert not llm.generated and llm.tokenize_calls <= 21


def test_llama_backend_refuses_what_cannot_fit() -> None:
    backend, llm, _ = fake_backend(n_ctx=256)
    with pytest.raises(BadRequest, match="context is 256 tokens"):
        backend._tokens([*history(), ChatMessage("user", "word " * 400)], 64, threading.Event())


def test_a_prompt_that_cannot_fit_is_a_400_through_the_api(client: TestClient, fake_llm: FakeLLM) -> None:
    def refuse(_messages: list[ChatMessage]) -> str:
        raise BadRequest("the prompt is 9999 tokens; the context is 1024", code="context_length_exceeded")

    fake_llm.reply = refuse
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "context_length_exceeded"


# -- the remote backend, against a fake OpenAI server on 127.0.0.1 --


class FakeOpenAI:
    def __init__(self, n_ctx: int) -> None:
        self.n_ctx = n_ctx
        self.bodies: list[dict[str, Any]] = []
        self.app = FastAPI()
        self.app.post("/v1/chat/completions")(self.chat)
        self.app.get("/v1/models")(lambda: {"data": [{"id": "fake-remote"}]})

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        self.bodies.append(body)
        chars = sum(len(m["content"]) for m in body["messages"])
        if chars // 4 + body["max_tokens"] > self.n_ctx:  # a server with a 4-characters-a-token model
            return JSONResponse({"error": {"message": "exceeds the context length"}}, status_code=400)
        chunk = {"choices": [{"index": 0, "delta": {"content": "fitted"}, "finish_reason": "stop"}]}
        return Response(f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n", media_type="text/event-stream")


@pytest.fixture
def fake_openai() -> Iterator[tuple[FakeOpenAI, str]]:
    server = FakeOpenAI(n_ctx=2048)
    with serve_app(server.app) as url:
        yield server, url


def test_remote_backend_sends_a_fitted_prompt(fake_openai: tuple[FakeOpenAI, str]) -> None:
    server, url = fake_openai
    backend = RemoteBackend(url, None, None, 10, n_ctx=2048)
    msgs = history()
    out = collect(backend.stream_chat(msgs, GenerationParams(max_tokens=256), threading.Event()))
    backend.close()
    assert out.text == "fitted"
    sent = [ChatMessage(m["role"], m["content"]) for m in server.bodies[-1]["messages"]]
    assert sent[0] == SYSTEM and sent[-1] == msgs[-1] and sent[1].role == "user"
    assert 10 < len(sent) < TURNS // 10
    assert sent == [SYSTEM, *msgs[len(msgs) - len(sent) + 1 :]]
    assert prompt_tokens(sent) + server.bodies[-1]["max_tokens"] <= 2048


def test_remote_backend_refuses_an_unfittable_prompt_without_calling_the_server(
    fake_openai: tuple[FakeOpenAI, str],
) -> None:
    server, url = fake_openai
    backend = RemoteBackend(url, "m", None, 10, n_ctx=2048)
    with pytest.raises(BadRequest, match="n_ctx is 2048"):
        collect(
            backend.stream_chat(
                [SYSTEM, ChatMessage("user", "word " * 5000)], GenerationParams(), threading.Event()
            )
        )
    assert server.bodies == []
    # A server that refuses anyway (its context is smaller than model.n_ctx says) is a 400 too, not a 502.
    backend.n_ctx = 100_000
    with pytest.raises(BadRequest, match="context length") as err:
        collect(backend.stream_chat(history(), GenerationParams(), threading.Event()))
    assert err.value.code == "context_length_exceeded"
    backend.close()


def test_daemon_with_remote_backend_answers_a_3000_turn_history(
    fake_openai: tuple[FakeOpenAI, str], tmp_path: Path
) -> None:
    from assistant.app import create_app
    from assistant.config import load_settings
    from assistant.services import build_services

    server, url = fake_openai
    settings = load_settings(
        None,
        data_dir=tmp_path,
        model={"backend": "openai", "base_url": url, "remote_model": "m", "n_ctx": 2048},
        memory={"enabled": False},
        scheduler={"enabled": False},
    )
    msgs = history()
    services = build_services(settings)
    with TestClient(create_app(services)) as c:
        # The history is stored, as a long-running conversation's would be; the request adds one turn.
        services.conversations.append("long", [(m.role, m.content) for m in msgs[1:-1]], services.clock.now())
        ask = {"messages": [{"role": "user", "content": msgs[-1].content}], "max_tokens": 64}
        r = c.post("/v1/chat/completions", json={**ask, "conversation_id": "long"})
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"] == "fitted"
        too_long = {"messages": [{"role": "user", "content": "word " * 5000}], "max_tokens": 64}
        r = c.post("/v1/chat/completions", json={**too_long, "conversation_id": "long"})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "context_length_exceeded"
    sent = server.bodies[0]["messages"]
    assert 10 < len(sent) < TURNS // 10 and sent[-1]["content"] == msgs[-1].content
    assert len(server.bodies) == 1  # the refused one never reached the server


def test_estimate_is_high_for_common_text() -> None:
    # Compared with Gemma 3's tokenizer (benchmarks and the slow test check it against the real one).
    assert estimate_tokens("The quick brown fox jumps over the lazy dog.") >= 10
    assert estimate_tokens("1234567890") == 10
    assert estimate_tokens("我们今天") == 4
    assert estimate_tokens("") == 0


# -- the bundled model (slow) --


@pytest.fixture(scope="module")
def real_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaBackend]:
    from assistant.llm.model_file import bundled_model_path

    path = bundled_model_path(tmp_path_factory.mktemp("models"), "smollm2")
    backend = LlamaBackend.load(path, ModelSettings(n_ctx=1024, n_batch=128, prompt_cache_mb=0))
    yield backend
    backend.close()


@pytest.mark.slow
def test_real_model_answers_or_refuses_a_3000_turn_history(
    real_backend: LlamaBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = real_backend
    tokenize_calls, formats = [0], [0]
    tokenize: Callable[..., list[int]] = backend.llm.tokenize
    formatter = backend.formatter

    def counted_tokenize(*a: Any, **kw: Any) -> list[int]:
        tokenize_calls[0] += 1
        return tokenize(*a, **kw)

    def counted_formatter(messages: Sequence[ChatMessage]) -> Prompt:
        formats[0] += 1
        return formatter(messages)

    monkeypatch.setattr(backend.llm, "tokenize", counted_tokenize)
    monkeypatch.setattr(backend, "formatter", counted_formatter)
    msgs = history()
    out = collect(
        backend.stream_chat(msgs, GenerationParams(max_tokens=4, temperature=0.0), threading.Event())
    )
    assert out.finish_reason in ("stop", "length")
    assert 0 < out.usage.prompt_tokens <= 1024
    # Linear work: far fewer tokenize calls than turns (only what can fit is tokenized), log n formats.
    assert tokenize_calls[0] < TURNS // 10
    assert formats[0] <= 2 + log2(TURNS)
    tokenize_calls[0] = formats[0] = 0
    with pytest.raises(BadRequest, match="context is 1024 tokens"):
        collect(
            backend.stream_chat(
                [*msgs, ChatMessage("user", "word " * 2000)], GenerationParams(), threading.Event()
            )
        )
    assert tokenize_calls[0] < TURNS // 10 and formats[0] <= 2


@pytest.fixture(scope="module")
def python_loop_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaBackend]:
    """The high-level loop evaluates the prompt through ``Llama.eval``, which this test hooks; the native
    loop's cancel during prompt evaluation is tested in llm/test_native_loop.py."""
    from assistant.llm.model_file import bundled_model_path

    path = bundled_model_path(tmp_path_factory.mktemp("models"), "smollm2")
    settings = ModelSettings(n_ctx=1024, n_batch=128, prompt_cache_mb=0, generation_loop="python")
    backend = LlamaBackend.load(path, settings)
    yield backend
    backend.close()


@pytest.mark.slow
def test_real_model_cancel_during_prompt_evaluation(
    python_loop_backend: LlamaBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = python_loop_backend
    backend.llm.reset()
    cancel = threading.Event()
    batches: list[int] = []
    evaluate: Callable[[Sequence[int]], None] = backend.llm.eval

    def counted_eval(tokens: Sequence[int]) -> None:
        batches.append(len(tokens))
        evaluate(tokens)
        cancel.set()  # the client goes away while the first batch is evaluated

    monkeypatch.setattr(backend.llm, "eval", counted_eval)
    msgs = history()
    out = collect(backend.stream_chat(msgs, GenerationParams(max_tokens=8), cancel))
    assert out.finish_reason == "cancelled" and out.text == ""
    assert batches == [128]  # one batch of a prompt of several hundred tokens
    # The next request resumes from what was evaluated and answers.
    out = collect(
        backend.stream_chat(msgs, GenerationParams(max_tokens=4, temperature=0.0), threading.Event())
    )
    assert out.finish_reason in ("stop", "length") and out.usage.completion_tokens > 0
    assert backend.last_reused_tokens >= 128
