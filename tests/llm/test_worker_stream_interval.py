"""Streamed tokens that come faster than ``server.stream_interval_ms`` go out together: fewer wake-ups of the
event loop, the same text, the first token at once, nothing held back at the end."""

from __future__ import annotations

import asyncio
import threading

from assistant.llm.types import ChatMessage, Delta, GenerationParams
from assistant.llm.worker import GenerationWorker
from tests.fakes import FakeLLM

REPLY = "one two three four five six"


class SteadyLLM(FakeLLM):
    steady_stream = True  # as the embedded model: the next token follows within one decoding step


def _stream(worker: GenerationWorker, gate: threading.Semaphore | None = None) -> list[Delta]:
    async def run() -> list[Delta]:
        job = worker.submit([ChatMessage("user", "hi")], GenerationParams(max_tokens=50))
        got: list[Delta] = []
        async for delta in job:
            got.append(delta)
            if gate is not None and len(got) == 1:
                gate.release(100)  # the first token is out on its own: let the rest come, fast
        return got

    return asyncio.run(run())


def test_fast_tokens_go_out_together_and_the_first_at_once() -> None:
    gate = threading.Semaphore(1)  # one token, then the rest only after the client saw it
    worker = GenerationWorker(SteadyLLM(REPLY, gate=gate), stream_interval=60.0)
    try:
        got = _stream(worker, gate)
        assert got[0].text == "one"  # not held: nothing was sent before it
        texts = [d.text for d in got if d.text]
        assert texts == ["one", " two three four five six"]  # all within the interval: held, then sent whole
        assert got[-1].finish_reason == "stop" and got[-1].usage is not None
        assert got[-1].usage.completion_tokens == 6  # the count is the model's, not the chunks'
        # a thread consumer (scheduled skills) is not held back and gets the same text
        assert worker.generate_text([ChatMessage("user", "hi")], GenerationParams()).text == REPLY
    finally:
        worker.close()


def test_no_interval_sends_every_token_the_same_text() -> None:
    gate = threading.Semaphore(0)
    worker = GenerationWorker(SteadyLLM(REPLY, gate=gate), stream_interval=0.0)

    async def run() -> list[str]:
        job = worker.submit([ChatMessage("user", "hi")], GenerationParams(max_tokens=50))
        gate.release()
        got: list[str] = []
        async for delta in job:
            if delta.text:
                got.append(delta.text)
                gate.release()  # the next token only after this one arrived: each comes on its own
        return got

    try:
        assert asyncio.run(run()) == ["one", " two", " three", " four", " five", " six"]
    finally:
        gate.release(100)
        worker.close()


def test_a_backend_that_may_stall_gets_no_held_tokens() -> None:
    """A remote server may pause mid-answer: a word held for the next chunk would wait through the pause."""
    gate = threading.Semaphore(0)
    worker = GenerationWorker(FakeLLM(REPLY, gate=gate), stream_interval=60.0)  # no steady_stream

    async def run() -> list[str]:
        job = worker.submit([ChatMessage("user", "hi")], GenerationParams(max_tokens=50))
        gate.release(2)  # two tokens, then the model stalls
        got: list[str] = []
        async for delta in job:
            if delta.text:
                got.append(delta.text)
            if "".join(got) == "one two":
                gate.release(100)  # both reached the client during the stall: go on
        return got

    try:
        assert "".join(asyncio.run(run())) == REPLY
    finally:
        gate.release(100)
        worker.close()
