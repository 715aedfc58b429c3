"""One model, many clients: a single generation thread fed by a bounded queue.

``submit`` never blocks: it raises QueueFull when ``queue_size`` jobs already wait. A job whose client
went away is cancelled; the backend stops at the next token and the worker moves on.
Async callers stream a job with ``async for delta in job``; threads (scheduled skills) use
``generate_text``.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import AsyncIterator, Iterator

from assistant.core.errors import AssistantError, BackendError, QueueFull
from assistant.llm.types import ChatMessage, Completion, Delta, GenerationParams, LLMBackend, collect

log = logging.getLogger(__name__)

_END = object()


class Job:
    def __init__(self, messages: list[ChatMessage], params: GenerationParams) -> None:
        self.messages = messages
        self.params = params
        self.cancel = threading.Event()
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
    def __init__(self, backend: LLMBackend, queue_size: int = 8, retry_after: int = 2) -> None:
        self.backend = backend
        self.retry_after = retry_after
        self._jobs: queue.Queue[Job | None] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.busy = False

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="llm-worker", daemon=True)
                self._thread.start()

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            # Cancel whatever waits, then stop the thread.
            while True:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    job.cancel.set()
                    job._emit(_END)
            self._jobs.put(None)
            thread.join(timeout=30)

    @property
    def waiting(self) -> int:
        return self._jobs.qsize()

    def _enqueue(self, job: Job) -> Job:
        self.start()
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            raise QueueFull(
                f"the model is busy: {self._jobs.maxsize} requests are already waiting; retry shortly",
                retry_after=self.retry_after,
            ) from None
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
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if job.cancel.is_set():
                job._emit(_END)
                continue
            self.busy = True
            try:
                for delta in self.backend.stream_chat(job.messages, job.params, job.cancel):
                    job._emit(delta)
                    if job.cancel.is_set():
                        break
            except AssistantError as exc:  # a refusal the client can act on keeps its status (400, 502)
                log.warning("generation refused: %s", exc.message)
                job._emit(exc)
            except Exception as exc:  # noqa: BLE001 - reported to the waiting client
                log.exception("generation failed")
                job._emit(BackendError(f"generation failed: {exc}"))
            finally:
                self.busy = False
                job._emit(_END)
