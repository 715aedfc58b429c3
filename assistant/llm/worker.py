"""One model, many clients: a single generation thread fed by a bounded queue.

``submit`` never blocks: it raises QueueFull when ``queue_size`` jobs already wait. A job whose client
went away is cancelled; the backend stops at the next token and the worker moves on.
Async callers stream a job with ``async for delta in job``; threads (scheduled skills) use
``generate_text``.

Each job runs in the ``contextvars`` context it was submitted from (its log lines carry the request or
scheduled-run id) and is reported to the ``Recorder``: tokens, time, time to first token, 429s.
``stop_streams`` (the daemon is stopping) cancels every job a client streams at its next token, ending it
with ``DaemonStopping`` (503), and refuses new ones; jobs of scheduled runs go on until ``close``.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Iterator

from assistant.core.errors import AssistantError, BackendError, QueueFull
from assistant.core.metrics import ERROR, NULL_RECORDER, Recorder
from assistant.llm.types import ChatMessage, Completion, Delta, GenerationParams, LLMBackend, collect

log = logging.getLogger(__name__)

_END = object()


class DaemonStopping(AssistantError):
    """The daemon is stopping: a generation in progress was cut short, or a new one refused."""

    status = 503
    type = "service_unavailable"
    code = "stopping"


class Job:
    def __init__(self, messages: list[ChatMessage], params: GenerationParams) -> None:
        self.messages = messages
        self.params = params
        self.cancel = threading.Event()
        self.stopped = False  # cancelled because the daemon is stopping
        self.queued_at = time.monotonic()
        self.context = contextvars.copy_context()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._aqueue: asyncio.Queue[object] | None = None
        self._tqueue: queue.SimpleQueue[object] | None = None

    # -- producer side (worker thread) --
    def _emit(self, item: object) -> None:
        if self._aqueue is not None and self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self._aqueue.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody listens any more
                self.cancel.set()
        elif self._tqueue is not None:
            self._tqueue.put(item)

    # -- consumer side --
    def __aiter__(self) -> AsyncIterator[Delta]:
        return self._aiter()

    async def _aiter(self) -> AsyncIterator[Delta]:
        assert self._aqueue is not None, "job was submitted for a thread consumer"
        queue = self._aqueue
        pending: object = None
        try:
            while True:
                item, pending = (pending, None) if pending is not None else (await queue.get(), None)
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, Delta)
                # When the consumer fell behind, join the text deltas already waiting into one.
                while item.finish_reason is None and not queue.empty():
                    nxt = queue.get_nowait()
                    if isinstance(nxt, Delta) and nxt.finish_reason is None:
                        item = Delta(item.text + nxt.text)
                    else:
                        pending = nxt
                        break
                assert isinstance(item, Delta)
                yield item
        finally:
            # Normal end, client disconnect (GeneratorExit / CancelledError) or error: stop the model.
            self.cancel.set()

    async def complete(self) -> Completion:
        parts: list[Delta] = [d async for d in self]
        return collect(iter(parts))

    def wait_text(self) -> Completion:
        tqueue = self._tqueue
        assert tqueue is not None

        def deltas() -> Iterator[Delta]:
            while True:
                item = tqueue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, Delta)
                yield item

        try:
            return collect(deltas())
        finally:
            self.cancel.set()


class GenerationWorker:
    def __init__(
        self, backend: LLMBackend, queue_size: int = 8, retry_after: int = 2, recorder: Recorder = NULL_RECORDER,
        stream_interval: float = 0.0, idle_tick: float | None = None,
    ) -> None:  # fmt: skip
        self.backend = backend
        # Every ``idle_tick`` seconds, between jobs, the backend's ``release_idle()`` (when it has one) runs:
        # memory it holds for later requests (saved prompt states unused for long) goes back to the system.
        self.idle_tick = idle_tick
        # A streamed job's text deltas that come within this many seconds of the last one sent are held and
        # sent with the next: every send wakes the event loop, which takes CPU from the model's threads.
        self.stream_interval = stream_interval
        self.retry_after = retry_after
        self.recorder = recorder
        self._jobs: queue.Queue[Job | None] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._live: set[Job] = set()  # queued or running, until their end is emitted
        self._stopping = False  # streamed jobs are refused
        self._closed = False  # every job is refused
        self.busy = False

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._stopping = self._closed = False
                self._thread = threading.Thread(target=self._run, name="llm-worker", daemon=True)
                self._thread.start()

    def stop_streams(self) -> int:
        """The daemon is stopping: refuse new streamed jobs and cancel the ones queued or running (each
        ends with DaemonStopping at its next token). Jobs of threads (scheduled runs) go on. Returns how
        many were cancelled."""
        with self._lock:
            self._stopping = True
            streamed = [j for j in self._live if j._aqueue is not None and not j.cancel.is_set()]
        for job in streamed:
            job.stopped = True
            job.cancel.set()
        return len(streamed)

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
            self._stopping = self._closed = True
            running = list(self._live)
        for job in running:  # the one running too, so a long answer does not hold the stop up
            job.stopped = True
            job.cancel.set()
        if thread is not None:
            # Cancel whatever waits, then stop the thread.
            while True:
                try:
                    waiting = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if waiting is not None:
                    waiting.cancel.set()
                    self._end(waiting)
            self._jobs.put(None)
            thread.join(timeout=30)

    @property
    def waiting(self) -> int:
        return self._jobs.qsize()

    @property
    def streaming(self) -> int:
        """Jobs of async consumers (HTTP requests) queued or running."""
        with self._lock:
            return sum(1 for j in self._live if j._aqueue is not None)

    def _enqueue(self, job: Job) -> Job:
        if self._closed or (self._stopping and job._aqueue is not None):
            raise DaemonStopping("the daemon is stopping; retry once it is back")
        self.start()
        with self._lock:
            try:
                self._jobs.put_nowait(job)
            except queue.Full:
                self.recorder.queue_full()
                raise QueueFull(
                    f"the model is busy: {self._jobs.maxsize} requests are already waiting; retry shortly",
                    retry_after=self.retry_after,
                ) from None
            self._live.add(job)
        return job

    def submit(self, messages: list[ChatMessage], params: GenerationParams) -> Job:
        """Queue a job for an asyncio consumer (call from the event loop)."""
        job = Job(messages, params)
        job._loop = asyncio.get_running_loop()
        job._aqueue = asyncio.Queue()
        return self._enqueue(job)

    def generate_text(self, messages: list[ChatMessage], params: GenerationParams) -> Completion:
        """Blocking generation for threads that are not the event loop (scheduled skills, CLI)."""
        job = Job(messages, params)
        job._tqueue = queue.SimpleQueue()
        return self._enqueue(job).wait_text()

    def _run(self) -> None:
        tick = self.idle_tick
        release = getattr(self.backend, "release_idle", None) if tick else None
        released = time.monotonic()
        while True:
            if release is not None and tick is not None and time.monotonic() - released >= tick:
                released = time.monotonic()
                try:
                    release()
                except Exception:  # noqa: BLE001 - giving memory back is best effort
                    log.warning("releasing idle memory failed", exc_info=True)
            try:
                job = self._jobs.get(timeout=tick if release is not None else None)
            except queue.Empty:
                continue
            if job is None:
                return
            if job.cancel.is_set():
                self._end(job)
                continue
            job.context.run(self._generate, job)

    def _generate(self, job: Job) -> None:
        """Stream one job to its consumer, in the context it was submitted from."""
        self.busy = True
        started = time.monotonic()
        first: float | None = None
        texts, tokens, outcome = 0, None, ERROR  # tokens: from the final usage, else the text deltas
        # Only a backend whose next delta follows within one decoding step (the embedded model) has its
        # fast tokens held: from one that may stall (a remote server), held text could wait for long.
        steady = bool(getattr(self.backend, "steady_stream", False))
        interval = self.stream_interval if job._aqueue is not None and steady else 0.0
        held = ""  # text not sent yet: it came within ``interval`` of the last send
        sent_at = 0.0
        try:
            for delta in self.backend.stream_chat(job.messages, job.params, job.cancel):
                if delta.text:
                    texts += 1
                    if first is None:
                        first = time.monotonic() - job.queued_at
                        self.recorder.first_token(first)
                if delta.finish_reason is not None:
                    outcome = delta.finish_reason
                    tokens = delta.usage.completion_tokens if delta.usage else None
                if interval and delta.finish_reason is None:
                    now = time.monotonic()
                    if now - sent_at < interval:
                        held += delta.text
                    else:
                        job._emit(Delta(held + delta.text) if held else delta)
                        held, sent_at = "", now
                else:
                    if held:
                        job._emit(Delta(held))
                        held = ""
                    job._emit(delta)
                if job.cancel.is_set():
                    outcome = delta.finish_reason or "cancelled"
                    break
            if held:  # cancelled, or the backend ended without a final delta: what was generated still goes
                job._emit(Delta(held))
        except AssistantError as exc:  # a refusal the client can act on keeps its status (400, 502)
            log.warning("generation refused: %s", exc.message)
            job._emit(exc)
        except Exception as exc:  # noqa: BLE001 - reported to the waiting client
            log.exception("generation failed")
            job._emit(BackendError(f"generation failed: {exc}"))
        finally:
            self.busy = False
            count = texts if tokens is None else tokens
            if job.stopped:
                outcome = "stopped"
                log.info("generation stopped after %d token(s): the daemon is stopping", count)
            self.recorder.generation(tokens=count, seconds=time.monotonic() - started, outcome=outcome)
            self._end(job)

    def _end(self, job: Job) -> None:
        """The job is over: it leaves the live set, then its consumer gets the end."""
        with self._lock:
            self._live.discard(job)
        if job.stopped:
            job._emit(DaemonStopping("the daemon is stopping: the answer was cut short; send it again later"))
        job._emit(_END)
