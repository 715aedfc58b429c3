"""The embedded backend: llama.cpp through llama-cpp-python, driven token by token.

We format the prompt ourselves (assistant.llm.chat_templates), tokenize, and run ``Llama.generate`` directly
instead of ``create_chat_completion``: that skips the binding's per-token bookkeeping (logprob and stop
handling over whole strings, chunk dicts), gives exact token counts, and lets us stop at the next token
when a client goes away. Prompt reuse: llama.cpp keeps the KV cache of the last prompt (``generate``
re-evaluates only the new suffix), and a RAM cache of saved states serves other conversations.

Prompts are tokenized part by part (assistant.llm.fit.PromptEncoder): the template's control tokens are
parsed, message text never is, so a ``<end_of_turn>`` inside a message stays text. A history longer than
the context loses its oldest turns in linear time, before the model lock is taken; a cancelled request
stops during the fit and between the prompt's batches too, not only between generated tokens.
"""

from __future__ import annotations

import codecs
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.config import ModelSettings
from assistant.core.errors import BadRequest, ConfigError, ModelFileError
from assistant.core.procmem import trim_heap
from assistant.llm.chat_templates import Formatter, Prompt, choose_formatter
from assistant.llm.fit import PromptEncoder, fit_messages
from assistant.llm.prefill_meter import PrefillMeter
from assistant.llm.types import ChatMessage, Delta, FinishReason, GenerationParams, Usage

if TYPE_CHECKING:
    from assistant.llm.drafting import Drafter
    from assistant.llm.native_loop import NativeLoop
    from assistant.llm.system_state import SystemStates

log = logging.getLogger(__name__)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class StopScanner:
    """Streams text while holding back any tail that could be the start of a stop string."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.hold = max((len(s) for s in self.stops), default=1) - 1
        self.buf = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """(text safe to emit, stopped)."""
        self.buf += text
        if not self.stops:
            out, self.buf = self.buf, ""
            return out, False
        cut = min((i for i in (self.buf.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            out, self.buf = self.buf[:cut], ""
            return out, True
        # Emit all but a tail that is a proper prefix of some stop string.
        keep = 0
        for n in range(min(self.hold, len(self.buf)), 0, -1):
            tail = self.buf[-n:]
            if any(s.startswith(tail) for s in self.stops):
                keep = n
                break
        out = self.buf[: len(self.buf) - keep]
        self.buf = self.buf[len(self.buf) - keep :]
        return out, False

    def flush(self) -> str:
        out, self.buf = self.buf, ""
        return out


class LlamaBackend:
    # The next delta of a stream follows within one decoding step: the worker may hold fast tokens for a
    # chunk (server.stream_interval_ms) without a held word waiting on anything but the model.
    steady_stream = True

    def __init__(self, llm: Any, name: str, formatter: Formatter, template: str, ms: ModelSettings) -> None:
        self.llm = llm
        self.name = name
        self.formatter = formatter
        self.template = template
        self.settings = ms
        self.n_ctx = int(llm.n_ctx())
        self._lock = threading.Lock()  # llama.cpp contexts are not thread-safe
        self.cache: Any = None
        if ms.prompt_cache_mb > 0:
            from assistant.llm.state_cache import ExpiringStateCache

            self.cache = ExpiringStateCache(ms.prompt_cache_mb << 20, ms.prompt_cache_idle_s)
        self.last_reused_tokens = 0  # prompt tokens not recomputed on the last call (for tests/metrics)
        self.prefill_meter = PrefillMeter()  # how fast prompts are read here (the recall budget follows it)
        self.native: NativeLoop | None = None
        if ms.generation_loop == "native":
            from assistant.llm.native_loop import NativeLoop

            self.native = NativeLoop(llm)
        self.drafter: Drafter | None = None  # speculative decoding (model.draft); set by ``load``
        # The system prompt's evaluated state on disk (assistant.llm.system_state); set by ``load``.
        self.system_states: SystemStates | None = None
        self._closing = threading.Event()

    def release_idle(self) -> int:
        """Drop the saved prompt states unused for ``model.prompt_cache_idle_s`` and give the freed memory
        back to the system; how many were dropped. Skipped (0) while a generation holds the model."""
        if self.cache is None or not self._lock.acquire(blocking=False):
            return 0
        try:
            dropped = self.cache.expire()
        finally:
            self._lock.release()
        if dropped:
            trim_heap()
            log.info("dropped %d saved prompt state(s) unused for %.0f s", dropped, self.cache.max_idle)
        return dropped

    @classmethod
    def load(
        cls, path: Path, ms: ModelSettings, *, state_dir: Path | None = None, data_dir: Path | None = None
    ) -> LlamaBackend:
        from assistant.llm.model_file import check_gguf, check_pinned_template

        check_gguf(path)
        from llama_cpp import Llama

        try:
            llm = Llama(**llama_kwargs(path, ms))
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelFileError(
                f"llama.cpp could not load {path}: the file is truncated, corrupt or of an unsupported "
                f"architecture ({exc})"
            ) from None
        metadata = dict(llm.metadata or {})
        check_pinned_template(
            path, metadata.get("tokenizer.chat_template")
        )  # a bundled file: the reviewed one
        bos = _token_text(llm, llm.token_bos())
        eos = _token_text(llm, llm.token_eos())
        try:
            template, formatter = choose_formatter(metadata, ms.chat_format, bos, eos)
        except ValueError as exc:
            raise ConfigError(f"model.chat_format: {exc}") from None
        name = path.stem
        log.info(
            "loaded %s (%s, chat template %s, n_ctx %d)",
            path,
            metadata.get("general.architecture"),
            template,
            ms.n_ctx,
        )
        backend = cls(llm, name, formatter, template, ms)
        backend.drafter = _drafter(backend, ms, data_dir)
        if state_dir is not None and ms.prompt_disk_mb > 0 and backend.native is not None:
            backend.system_states = _system_states(path, ms, state_dir, formatter, metadata, template)
        return backend

    def close(self) -> None:
        self._closing.set()  # a warm-up in progress stops at its next batch
        locked = self._lock.acquire(timeout=30)
        try:
            close = getattr(self.llm, "close", None)
            if close:
                close()
        finally:
            if locked:
                self._lock.release()
        if self.system_states is not None:
            self.system_states.disk.flush()  # a state being written is finished, not left half-written

    @property
    def closing(self) -> threading.Event:
        """Set once ``close`` began (background warm-ups stop on it)."""
        return self._closing

    # -- the system prompt's state (assistant.llm.system_state) --
    def _anchor(self, messages: Sequence[ChatMessage]) -> tuple[int, ...]:
        if self.system_states is None:
            return ()
        return self.system_states.anchor(messages, PromptEncoder(self.llm.tokenize).encode)

    def _ram_prefix(self, tokens: Sequence[int]) -> int:
        if self.cache is None:
            return 0
        try:
            state = self.cache[tokens]
        except KeyError:
            return 0
        return _common_prefix(state.input_ids[: state.n_tokens].tolist(), tokens)

    def _system_state(self, tokens: list[int], anchor: Sequence[int], cancel: threading.Event) -> int:
        """Load or build the state of the prompt's system prefix (``anchor``); how many of its tokens were
        evaluated by this call (0 when they were live, saved in RAM or loaded from disk)."""
        states, native = self.system_states, self.native
        if states is None or native is None:
            return 0
        if not anchor:
            states.last_source = "none"
            return 0
        n = _common_prefix(anchor, tokens)
        if n >= len(tokens):  # the whole prompt is the prefix: leave it to the prefill
            return 0
        source = states.restore(native, tokens, n, cancel, int(self.settings.n_batch), self._ram_prefix)
        return n if source == "built" else 0

    def keep_system_prompts(self, texts: Sequence[str]) -> None:
        """The daemon's own system texts (each persona's of the day), whose evaluated states are kept on disk;
        a client's own system text is not (assistant.llm.system_state)."""
        if self.system_states is not None:
            self.system_states.keep(texts)

    def warm_system_prompt(self, system_text: str) -> str:
        """Make the live context hold the evaluated prefix of a chat with this system text (one of
        ``keep_system_prompts``'), from disk or evaluated and saved there (at start, for the default
        persona); where it came from."""
        anchor = self._anchor([ChatMessage("system", system_text)])
        if not anchor or self.system_states is None or self.native is None:
            return "none"
        with self._lock:
            if self._closing.is_set():
                return "none"
            source = self.system_states.restore(
                self.native, anchor, len(anchor), self._closing, int(self.settings.n_batch), self._ram_prefix
            )
            if source == "disk":
                self._touch_weights(anchor[-1])
            return source

    def _touch_weights(self, token: int) -> None:
        """llama.cpp's own warm-up (llama-server runs it before it answers /health): one decode reads every
        weight once, so the first chat does not wait for the mapped model file to be paged in (after a boot,
        from the SD card). A state loaded from disk evaluated nothing; the extra token is dropped again."""
        native = self.native
        if native is None:
            return
        n = int(self.llm.n_tokens)
        try:
            native._decode([token])
        finally:
            native._forget_from(n)

    # -- prompt --
    def _tokens(
        self, messages: Sequence[ChatMessage], max_tokens: int, cancel: threading.Event
    ) -> tuple[list[int], tuple[str, ...]] | None:
        """Tokenize, dropping the oldest turns (never the system text or the last message) to fit.

        Linear: every message is tokenized at most once and the prompt formatted O(log n) times (see
        assistant.llm.fit). Message text is tokenized without special tokens. None when cancelled.
        """
        encoder = PromptEncoder(self.llm.tokenize)
        prompts: dict[int, Prompt] = {}

        def prompt_cost(msgs: list[ChatMessage]) -> int:
            prompt = prompts[len(msgs)] = self.formatter(msgs)
            return len(encoder.encode(prompt))

        fitted = fit_messages(
            messages,
            self.n_ctx - min(max_tokens, 64),
            lambda m: len(encoder.plain(m.content)),
            prompt_cost,
            cancel,
            context_note=f"the model's context is {self.n_ctx} tokens",
        )
        if fitted is None:
            return None
        if fitted.dropped:
            log.info("dropped the %d oldest turns to fit the context", fitted.dropped)
        prompt = prompts[len(fitted.messages)]
        return encoder.encode(prompt), prompt.stop

    def _restore_prefix(self, tokens: list[int]) -> None:
        """Load a saved state when it shares a longer prefix with ``tokens`` than the live context."""
        live = _common_prefix(self.llm._input_ids.tolist(), tokens)
        if self.cache is not None:
            try:
                state = self.cache[tokens]
            except KeyError:
                state = None
            if state is not None:
                saved = _common_prefix(state.input_ids[: state.n_tokens].tolist(), tokens)
                if saved > live:
                    if self.native is not None:
                        self.native.load_state(state)
                    else:
                        self.llm.load_state(state)
                    live = saved
        self.last_reused_tokens = min(live, len(tokens) - 1) if live else 0

    def _prefill(self, tokens: list[int], cancel: threading.Event, measure: bool = True) -> bool:
        """Evaluate the prompt but its last token one batch at a time, checking ``cancel`` in between.

        ``generate`` then finds them in the KV cache and evaluates only the last token, as it does for a
        prefix kept from the previous turn. False when cancelled (the cache keeps what was evaluated).
        """
        llm = self.llm
        target = len(tokens) - 1
        done = _common_prefix(llm._input_ids.tolist(), tokens[:target])
        if done >= target:
            return True
        if done > 0 and llm._ctx.kv_cache_seq_rm(-1, done, -1):
            llm.n_tokens = done
        else:
            llm.reset()
            done = 0
        step = max(1, int(self.settings.n_batch))
        started = time.perf_counter()
        for start in range(done, target, step):
            if cancel.is_set():
                return False
            llm.eval(tokens[start : min(target, start + step)])
        if measure:
            self.prefill_meter.add(target - done, time.perf_counter() - started)
        return True

    # -- generation --
    def stream_chat(
        self, messages: list[ChatMessage], params: GenerationParams, cancel: threading.Event
    ) -> Iterator[Delta]:
        if params.tools:
            from assistant.llm.tool_calls import with_tools

            messages = with_tools(messages, params.tools)
        # Fitting only reads the vocabulary: it needs no lock, and another request's generation goes on.
        fitted = self._tokens(messages, params.max_tokens, cancel)
        if fitted is None:
            yield Delta("", "cancelled", Usage(0, 0))
            return
        anchor = self._anchor(messages)
        with self._lock:
            yield from self._stream(*fitted, params, cancel, anchor=anchor)

    def _stream(
        self,
        tokens: list[int],
        template_stops: tuple[str, ...],
        params: GenerationParams,
        cancel: threading.Event,
        anchor: Sequence[int] = (),
    ) -> Iterator[Delta]:
        from llama_cpp import llama_vocab_is_eog

        if self.native is not None:
            yield from self._stream_native(self.native, tokens, template_stops, params, cancel, anchor)
            return
        llm = self.llm
        max_tokens = min(params.max_tokens, self.n_ctx - len(tokens))
        self._restore_prefix(tokens)
        if not self._prefill(tokens, cancel, not params.background):
            yield Delta("", "cancelled", Usage(len(tokens), 0))
            return
        if params.seed is not None:
            llm.set_seed(params.seed)
        vocab = llm._model.vocab
        scanner = StopScanner((*template_stops, *params.stop))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        completion: list[int] = []
        finish: FinishReason = "length"
        gen = llm.generate(
            tokens,
            temp=params.temperature,
            top_p=params.top_p,
            top_k=40,
            min_p=0.05,
            repeat_penalty=self.settings.repeat_penalty,
            presence_penalty=params.presence_penalty,
            frequency_penalty=params.frequency_penalty,
            grammar=_grammar(params.grammar),
        )
        try:
            for tok in gen:
                if cancel.is_set():
                    finish = "cancelled"
                    break
                if llama_vocab_is_eog(vocab, tok):
                    finish = "stop"
                    break
                completion.append(tok)
                text = decoder.decode(llm.detokenize([tok]))
                out, stopped = scanner.feed(text) if text else ("", False)
                if out:
                    yield Delta(out)
                if stopped:
                    finish = "stop"
                    break
                if len(completion) >= max_tokens:
                    break
        finally:
            gen.close()

        def tail() -> str:
            return scanner.flush() + decoder.decode(b"", final=True)

        yield from self._end_stream(finish, tail, tokens, completion, llm.save_state, params)

    def _stream_native(
        self,
        native: NativeLoop,
        tokens: list[int],
        template_stops: tuple[str, ...],
        params: GenerationParams,
        cancel: threading.Event,
        anchor: Sequence[int] = (),
    ) -> Iterator[Delta]:
        """The same contract as the ``Llama.generate`` path, on llama.cpp's C API (assistant.llm.native_loop)."""
        max_tokens = min(params.max_tokens, self.n_ctx - len(tokens))
        built = self._system_state(tokens, anchor, cancel)
        self._restore_prefix(tokens)
        self.last_reused_tokens = max(0, self.last_reused_tokens - built)  # evaluated by this request
        started = time.perf_counter()
        if not native.prefill(tokens, int(self.settings.n_batch), cancel):
            yield Delta("", "cancelled", Usage(len(tokens), 0))
            return
        if not params.background:
            self.prefill_meter.add(native.last_prefilled, time.perf_counter() - started)
        seed = params.seed if params.seed is not None else int(self.llm._seed)
        try:
            sampler = native.sampler(params, self.settings.repeat_penalty, seed)
        except (
            ValueError
        ) as exc:  # llama.cpp refused the grammar (a left recursion, say): the request's doing
            raise BadRequest(f"the answer's grammar cannot be used: {exc}", code="invalid_grammar") from None
        scanner = StopScanner((*template_stops, *params.stop))
        try:
            finish, completion = yield from native.generate(
                sampler, max_tokens, scanner.feed, cancel, self.drafter, self.settings.draft_tokens
            )
        finally:
            sampler.free()
        yield from self._end_stream(finish, scanner.flush, tokens, completion, native.save_state, params)

    def _end_stream(
        self,
        finish: FinishReason,
        tail: Callable[[], str],
        tokens: list[int],
        completion: list[int],
        save_state: Callable[[], Any],
        params: GenerationParams,
    ) -> Iterator[Delta]:
        """How both loops end a stream: the text the stop scanner held back (not after a stop string or a
        cancel), the final delta with usage, then the state saved for the RAM cache (still under the lock: the
        end, and the text the worker holds for it, does not wait for the copy)."""
        if finish != "stop":
            text = tail()
            if text and finish != "cancelled":
                yield Delta(text)
        yield Delta("", finish, Usage(len(tokens), len(completion)))
        if self.cache is not None and params.save_state and finish != "cancelled":
            try:
                self.cache.put(tokens + completion, save_state(), group=params.state_group)
            except Exception:  # noqa: BLE001 - the cache is an optimisation
                log.debug("could not save the prompt state", exc_info=True)


def llama_kwargs(path: Path, ms: ModelSettings) -> dict[str, Any]:
    """The ``Llama(...)`` arguments for a model file and the model settings."""
    return {
        "model_path": str(path),
        "n_ctx": ms.n_ctx,
        "n_threads": ms.n_threads,
        "n_threads_batch": ms.n_threads,
        "n_batch": ms.n_batch,
        "use_mmap": ms.use_mmap,
        "flash_attn": ms.flash_attn,
        "seed": ms.seed if ms.seed >= 0 else 0xFFFFFFFF,
        "verbose": False,
    }


def _system_states(
    path: Path, ms: ModelSettings, state_dir: Path, formatter: Formatter, metadata: dict[str, Any], template: str
) -> SystemStates:
    """The disk store of system prompt states for this model file, runtime and context settings."""
    import hashlib

    from assistant.llm.bundled import BUNDLED
    from assistant.llm.state_disk import DiskStates, model_identity, runtime_identity
    from assistant.llm.system_state import SystemStates

    pinned = next((m for m in BUNDLED.values() if m.file_name == path.name), None)
    model = model_identity(path, pinned.sha256 if pinned else None, pinned.size if pinned else None)
    context = f"n_ctx={ms.n_ctx};n_batch={ms.n_batch};flash_attn={ms.flash_attn}"
    text = f"{template}\n{metadata.get('tokenizer.chat_template') or ''}"
    disk = DiskStates(state_dir, ms.prompt_disk_mb << 20)
    return SystemStates(
        disk, formatter, model, runtime_identity(), context, hashlib.sha256(text.encode()).hexdigest()
    )


def _drafter(backend: LlamaBackend, ms: ModelSettings, data_dir: Path | None) -> Drafter | None:
    """The drafter of ``model.draft`` (assistant.llm.drafting), for the native loop only; closed with the
    backend's model (a draft model is its own Llama, closed first)."""
    if ms.draft == "none":
        return None
    if backend.native is None:
        log.warning('model.draft = "%s" is ignored: drafting runs in the native loop only', ms.draft)
        return None
    from assistant.config import default_data_dir
    from assistant.llm.drafting import load_drafter

    drafter = load_drafter(backend.llm, ms, data_dir or default_data_dir(), llama_kwargs)
    if drafter is not None:
        stack = getattr(backend.llm, "_stack", None)
        if stack is not None:
            stack.callback(drafter.close)
        log.info("drafting: %s, up to %d tokens a step (greedy requests)", ms.draft, ms.draft_tokens)
    return drafter


def _grammar(gbnf: str | None) -> Any:
    """``GenerationParams.grammar`` for ``Llama.generate`` (None: no grammar)."""
    if not gbnf:
        return None
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_string(gbnf, verbose=False)


def _token_text(llm: Any, token: int) -> str:
    try:
        return llm._model.token_get_text(token)
    except Exception:  # noqa: BLE001
        return ""
