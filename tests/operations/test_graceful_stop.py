"""Graceful stop: SIGTERM to the real daemon (`python -m assistant serve`, the bundled model) in the middle
of a streamed answer. It exits 0 within a few seconds, the stream ends cleanly (a "stopping" error and
[DONE], no broken connection), what it acknowledged before is there after a restart, and its JSON log has
the shutdown lines with the id of the request that was cut short. In-process tests check the order of
``Services.close``: a running scheduled job finishes (within server.stop_timeout) before the notifier and
memory it uses are closed."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant.config import load_settings
from assistant.core.errors import AssistantError
from assistant.core.metrics import PrometheusRecorder
from assistant.llm.worker import DaemonStopping
from assistant.services import Services, build_services
from assistant.skillkit.api import SkillContext, SkillResult, skill
from assistant.skillkit.registry import specs_in
from tests.daemon import start_daemon
from tests.fakes import FakeLLM

STOP_TIMEOUT = 5.0
CONFIG = f"""
[server]
log_format = "json"
stop_timeout = {STOP_TIMEOUT}

[model]
bundled = "smollm2"  # the fast real model (auto picks a Qwen on a big machine)
n_ctx = 1024

[notify]
desktop = false

[feeds]
enabled = false
"""
LONG = {
    "messages": [
        {"role": "user", "content": "Write a very long story about a lighthouse keeper, in many chapters."}
    ],
    "max_tokens": 1000,
    "temperature": 0.8,
    "stream": True,
}


def _stream_until_cut(url: str, enough: threading.Event, out: dict[str, Any]) -> None:
    """Read a streamed answer to its end; set ``enough`` after a few tokens."""
    data: list[str] = []
    try:
        with httpx.stream("POST", url + "/v1/chat/completions", json=LONG, timeout=60) as r:
            out["status"], out["request_id"] = r.status_code, r.headers.get("x-request-id")
            for line in r.iter_lines():
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                    if len(data) >= 6:
                        enough.set()
    except httpx.HTTPError as exc:  # a broken stream: what the test must not see
        out["error"] = repr(exc)
    finally:
        out["data"] = data
        enough.set()


@pytest.mark.slow
def test_sigterm_mid_stream_exits_0_ends_the_stream_and_keeps_acknowledged_writes(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with start_daemon(data_dir, config_toml=CONFIG) as daemon:
        api = httpx.Client(base_url=daemon.url, timeout=60)
        memory = api.post("/api/memories", json={"text": "The spare key is under the blue flowerpot."})
        assert memory.status_code == 201
        note = api.post(
            "/api/notifications", json={"title": "Stop test", "body": "acknowledged before SIGTERM"}
        )
        assert note.status_code in (200, 201)
        chat = api.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 8},
        )
        assert chat.status_code == 200
        conversation_id = chat.json()["conversation_id"]

        enough, streamed = threading.Event(), {}
        reader = threading.Thread(target=_stream_until_cut, args=(daemon.url, enough, streamed))
        reader.start()
        assert enough.wait(120), "the model produced no tokens"
        assert "error" not in streamed and streamed["status"] == 200
        daemon.proc.send_signal(signal.SIGTERM)
        code = daemon.proc.wait(timeout=30)  # a hang guard, not a measurement
        reader.join(30)
        api.close()
        log = daemon.log()

    assert code == 0, log[-3000:]

    # The stream ended cleanly: every event is JSON, the last two are the "stopping" error and [DONE].
    assert "error" not in streamed, streamed["error"]
    data = streamed["data"]
    assert data[-1] == "[DONE]"
    events = [json.loads(d) for d in data[:-1]]
    assert events[-1]["error"]["code"] == "stopping" and "stopping" in events[-1]["error"]["message"]
    assert sum(1 for e in events if e.get("choices") and e["choices"][0]["delta"].get("content")) >= 5

    # The JSON log: every line parses; the cut-short request's lines carry its id.
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert len(records) > 5 and len(records) == sum(1 for line in log.splitlines() if line.strip())
    rid = streamed["request_id"]
    mine = [r for r in records if r.get("request_id") == rid]
    assert any(r["logger"] == "assistant.llm.worker" and "generation stopped" in r["msg"] for r in mine)
    assert any(
        r["logger"] == "assistant.access" and r["msg"].startswith("POST /v1/chat/completions 200")
        for r in mine
    )
    messages = [r["msg"] for r in records]
    assert any(m.startswith("stopping: 1 streamed answer(s) cut short") for m in messages)
    assert messages[-1] == "stopped"
    # The stop did not wait out server.stop_timeout: the stream ended at its next token, nothing was cancelled
    # for lack of time (uvicorn says so when it has to). Checked in the log, not on the clock.
    assert any(m.startswith("HTTP server stopped in") for m in messages)
    assert not any("graceful shutdown exceeded" in m for m in messages)

    # Everything acknowledged before the signal is there after a restart.
    with start_daemon(data_dir, config_toml=CONFIG) as again:
        api = httpx.Client(base_url=again.url, timeout=60)
        assert api.get(f"/api/memories/{memory.json()['id']}").json()["text"].startswith("The spare key")
        assert api.get(f"/api/notifications/{note.json()['id']}").json()["title"] == "Stop test"
        turns = api.get(f"/api/conversations/{conversation_id}").json()
        assert "Say hi." in json.dumps(turns)
        api.close()


# -- the order of Services.close, in process ------------------------------------------------------------

release = threading.Event()
running = threading.Event()


@skill(
    "slow_report", "A report that takes a while (waits for the test)", remember=False, untrusted_output=False
)
def slow_report(ctx: SkillContext) -> SkillResult:
    running.set()
    release.wait(30)
    return SkillResult("the slow report", title="Slow report")


class ClosingNotifier:
    """Records notifications, and refuses them once closed (as the real outbox would fail)."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.closed = False

    def notify(self, title: str, body: str, **_: Any) -> None:
        if self.closed:
            raise RuntimeError("notifier is closed")
        self.sent.append(title)

    def close(self) -> None:
        self.closed = True


def _scheduled_services(tmp_path: Path, stop_timeout: float) -> tuple[Services, ClosingNotifier]:
    """The daemon with slow_report as its skill, the scheduler started and a notifier that refuses
    notifications once closed."""
    from assistant.skillkit.registry import SkillRegistry

    settings = load_settings(
        None, data_dir=tmp_path / "data", server={"stop_timeout": stop_timeout}, memory={"enabled": False},
        scheduler={"enabled": True},
    )  # fmt: skip
    notifier = ClosingNotifier()
    services = build_services(
        settings, llm=FakeLLM(), notifier=notifier,  # type: ignore[arg-type]
        skill_registry=SkillRegistry([specs_in(slow_report)[0]]),
    )  # fmt: skip
    assert services.scheduler is not None
    services.scheduler.start()
    return services, notifier


def _run_in_scheduler_thread(services: Services) -> None:
    """Start a run of slow_report on the scheduler's own pool, as a due job would be."""
    assert services.scheduler is not None
    schedule = services.scheduler.add("slow_report", "every 6 hours")
    services.scheduler._aps.modify_job(schedule.id, next_run_time=datetime.now(UTC))  # due now
    assert running.wait(30), "the scheduled run did not start"


@pytest.fixture
def fresh_events() -> None:
    release.clear()
    running.clear()


def test_close_lets_a_running_scheduled_job_finish_before_the_notifier_closes(
    tmp_path: Path, fresh_events: None
) -> None:
    services, notifier = _scheduled_services(tmp_path, stop_timeout=30)
    _run_in_scheduler_thread(services)
    closer = threading.Thread(target=services.close)
    closer.start()
    closer.join(0.5)
    assert closer.is_alive() and not notifier.closed  # close waits for the run
    release.set()
    closer.join(30)
    assert not closer.is_alive()
    assert notifier.sent == ["Slow report"] and notifier.closed


def test_close_gives_up_on_a_job_that_outlives_stop_timeout(
    tmp_path: Path, fresh_events: None
) -> None:
    services, notifier = _scheduled_services(tmp_path, stop_timeout=0.5)
    _run_in_scheduler_thread(services)
    closer = threading.Thread(target=services.close)
    closer.start()
    closer.join(60)  # a hang guard, not a measurement
    assert not closer.is_alive() and notifier.closed  # close returned while the job still waits for release
    assert running.is_set() and not release.is_set()
    release.set()


def test_stop_streams_ends_a_stream_at_its_next_token_with_stopping() -> None:
    from assistant.llm.types import ChatMessage, GenerationParams
    from assistant.llm.worker import GenerationWorker

    gate = threading.Semaphore(0)
    llm = FakeLLM("one two three four five six", gate=gate)
    recorder = PrometheusRecorder()
    worker = GenerationWorker(llm, recorder=recorder)

    async def stream() -> tuple[list[str], BaseException | None]:
        job = worker.submit([ChatMessage("user", "hi")], GenerationParams(max_tokens=50))
        gate.release()  # one token
        got: list[str] = []
        try:
            async for delta in job:
                got.append(delta.text)
                if delta.text:
                    assert worker.stop_streams() == 1
                    gate.release()  # the model would go on: it stops at this next token
        except AssistantError as exc:
            return got, exc
        return got, None

    try:
        got, error = asyncio.run(stream())
        assert isinstance(error, DaemonStopping) and error.status == 503 and error.code == "stopping"
        assert got[0] == "one" and "two" not in "".join(got)  # cut before the next token went out
        assert worker.streaming == 0
        assert recorder.registry.get_sample_value("assistant_generations_total", {"outcome": "stopped"}) == 1

        async def again() -> None:
            worker.submit([ChatMessage("user", "again")], GenerationParams())

        with pytest.raises(DaemonStopping):
            asyncio.run(again())
        gate.release(100)
        # a scheduled run (a thread, not a stream) still gets the model until the worker closes
        assert worker.generate_text(
            [ChatMessage("user", "a scheduled run")], GenerationParams(max_tokens=3)
        ).text
    finally:
        gate.release(100)
        worker.close()
    with pytest.raises(DaemonStopping):
        worker.generate_text([ChatMessage("user", "after close")], GenerationParams())
