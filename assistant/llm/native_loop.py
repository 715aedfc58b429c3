"""The generation loop on llama.cpp's C API (``model.generation_loop = "native"``).

``Llama.generate`` wraps every token in Python bookkeeping: a numpy write of the token, a batch filled
element by element, a ``kv_cache_seq_rm`` call, the sampler object's wrapper, ``detokenize`` through the
tokenizer object. This loop keeps only what a token needs:

- one ``llama_decode`` of a one-token ``llama_batch`` built once (``llama_batch_get_one`` over a
  one-element array we overwrite; llama.cpp takes the position from the KV cache),
- the repeat penalty (and OpenAI's presence and frequency penalties, when a request sets them) applied to
  the logits of the last 64 sampled tokens only, in place in the context,
- one ``llama_sampler_sample(chain, ctx, -1)``: the chain (greedy, or top-k, top-p, min-p, temperature and
  a seeded distribution: with the penalty before it, the same chain and order as ``Llama.generate``) reads
  the logits in place in the context; no vocabulary-sized array is copied,
- a dict lookup for the token's bytes and whether it ends generation (``llama_token_to_piece`` and
  ``llama_vocab_is_eog`` run once per distinct token, then are remembered for the model's lifetime),
- an incremental UTF-8 decoder and the stop-string scanner.

The high-level ``Llama`` object still owns the model and context: the prompt fit, the RAM state cache and
``_restore_prefix`` read ``Llama.input_ids``/``n_tokens``, so we keep them true (written once per prompt
batch and once at the end of a generation, not per token). Saved states carry no logits: ``Llama.save_state``
copies ``scores[:n_tokens]`` (up to n_batch rows of the whole vocabulary: 512 MiB for Gemma 3's 262k tokens),
which this loop never reads.
"""

from __future__ import annotations

import codecs
import collections
import ctypes
import threading
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

import llama_cpp as C
import numpy as np

from assistant.llm.drafting import Drafter, DraftStats, fill_batch, speculate
from assistant.llm.types import Delta, FinishReason, GenerationParams

PENALTY_LAST_N = 64  # Llama(last_n_tokens_size=64), what Llama.generate's penalty sampler sees
TOP_K = 40
MIN_P = 0.05


class DecodeError(RuntimeError):
    pass


@dataclass(frozen=True)
class Sampling:
    chain: Any  # a llama_sampler chain
    repeat_penalty: float
    greedy: bool = False  # the chain is greedy alone: the loop takes the argmax of the logits itself
    presence_penalty: float = 0.0  # subtracted from the logit of a token among the recent ones
    frequency_penalty: float = 0.0  # subtracted once for each time it is among them
    grammar: Any = None  # greedy under a grammar: the chain's grammar sampler, tried on the argmax first

    def free(self) -> None:
        C.llama_sampler_free(self.chain)


class NativeLoop:
    """Prefill and token-by-token generation on one ``Llama`` object's context (not thread-safe)."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self.ctx = llm.ctx
        self.mem = C.llama_get_memory(self.ctx)
        self.vocab = llm._model.vocab
        self.n_vocab = int(C.llama_vocab_n_tokens(self.vocab))
        self._pieces: dict[int, bytes] = {}
        self._eog: set[int] = set()
        self._buf = ctypes.create_string_buffer(256)
        self._one = (C.llama_token * 1)()
        self._one_batch = C.llama_batch_get_one(self._one, 1)
        self.last_draft: DraftStats | None = None  # what drafting did in the last generation, if it drafted
        self.last_prefilled = 0  # prompt tokens the last prefill read (the rest came from the KV cache)

    # -- vocabulary --
    def learn(self, tok: int) -> bytes:
        """The token's text bytes (b"" for an end-of-generation token), remembered."""
        if C.llama_vocab_is_eog(self.vocab, tok):
            self._eog.add(tok)
            piece = b""
        else:
            buf = self._buf
            n = C.llama_token_to_piece(self.vocab, tok, buf, len(buf), 0, False)
            if n < 0:
                buf = ctypes.create_string_buffer(-n)
                n = C.llama_token_to_piece(self.vocab, tok, buf, len(buf), 0, False)
            piece = buf.raw[:n]
        self._pieces[tok] = piece
        return piece

    # -- KV cache --
    def _forget_from(self, pos: int) -> int:
        """Drop the KV cache from ``pos`` on; the position kept (0 when only a full clear works)."""
        llm = self.llm
        if pos > 0 and C.llama_memory_seq_rm(self.mem, 0, pos, -1):
            llm.n_tokens = pos
            return pos
        C.llama_memory_clear(self.mem, True)
        llm.n_tokens = 0
        return 0

    def _decode(self, tokens: Sequence[int]) -> None:
        n = len(tokens)
        arr = (C.llama_token * n)(*tokens)
        rc = C.llama_decode(self.ctx, C.llama_batch_get_one(arr, n))
        if rc != 0:
            raise DecodeError(f"llama_decode failed ({rc})")
        llm = self.llm
        llm.input_ids[llm.n_tokens : llm.n_tokens + n] = tokens
        llm.n_tokens += n

    def prefill(self, tokens: list[int], n_batch: int, cancel: threading.Event) -> bool:
        """Evaluate the prompt (reusing the cached prefix) up to the logits of its last token.

        All but the last token go in ``n_batch`` chunks with a cancel check in between; the last token is
        decoded alone, as ``Llama.generate`` does after the high-level prefill, so both loops see the same
        logits. False when cancelled (the KV cache keeps what was evaluated).
        """
        llm = self.llm
        target = len(tokens) - 1
        done = 0
        ids = llm.input_ids
        limit = min(int(llm.n_tokens), target)
        if limit > 0:
            same = np.asarray(ids[:limit]) == np.asarray(tokens[:limit], dtype=np.intc)
            done = limit if bool(same.all()) else int(np.argmin(same))
        done = self._forget_from(done)
        self.last_prefilled = len(tokens) - done  # what this prefill reads (the prefill meter's tokens)
        step = max(1, n_batch)
        for start in range(done, target, step):
            if cancel.is_set():
                return False
            self._decode(tokens[start : min(target, start + step)])
        if cancel.is_set():
            return False
        self._decode(tokens[target:])
        llm._requires_eval = False
        return True

    # -- sampling --
    def sampler(self, params: GenerationParams, repeat_penalty: float, seed: int) -> Sampling:
        """The sampler chain (free it with ``free``) and the repeat penalty ``generate`` applies before it.

        The penalty is the one of llama.cpp's penalties sampler (a logit of a token among the last 64 sampled
        is divided by it when positive, multiplied when not), applied here to the few logits it changes:
        llama.cpp's sampler looks every token of the vocabulary up in its counts (49k lookups a token for
        SmolLM2, 262k for Gemma 3), the largest cost of the chain."""
        chain = C.llama_sampler_chain_init(C.llama_sampler_chain_default_params())
        add = C.llama_sampler_chain_add
        if params.grammar:  # before the samplers that pick: only tokens the grammar allows remain
            grammar = C.llama_sampler_init_grammar(self.vocab, params.grammar.encode(), b"root")
            if not grammar:
                C.llama_sampler_free(chain)
                raise ValueError("invalid GBNF grammar")
            add(chain, grammar)
        present, freq = params.presence_penalty, params.frequency_penalty
        if params.temperature <= 0:
            add(chain, C.llama_sampler_init_greedy())
            if not params.grammar:
                return Sampling(chain, repeat_penalty, True, present, freq)
            return Sampling(chain, repeat_penalty, False, present, freq, grammar)
        else:
            add(chain, C.llama_sampler_init_top_k(TOP_K))
            add(chain, C.llama_sampler_init_top_p(params.top_p, 1))
            add(chain, C.llama_sampler_init_min_p(MIN_P, 1))
            add(chain, C.llama_sampler_init_temp(params.temperature))
            add(chain, C.llama_sampler_init_dist(seed & 0xFFFFFFFF))
        return Sampling(chain, repeat_penalty, False, present, freq)

    # -- generation --
    def generate(
        self,
        sampling: Sampling,
        max_tokens: int,
        feed: Callable[[str], tuple[str, bool]],
        cancel: threading.Event,
        drafter: Drafter | None = None,
        draft_tokens: int = 0,
    ) -> Generator[Delta, None, tuple[FinishReason, list[int]]]:
        """Sample, emit and decode until end of generation, a stop string, ``max_tokens`` or a cancel.

        The context must hold the prompt's logits (``prefill``). Returns (finish reason, completion
        tokens); the last completion token is not decoded (nothing reads its logits). With a ``drafter``
        and a greedy ``sampling``, up to ``draft_tokens`` drafts are verified at each step
        (assistant.llm.drafting); ``last_draft`` then tells how many were kept.
        """
        recent: collections.deque[int] = collections.deque(maxlen=PENALTY_LAST_N)
        llm = self.llm
        start = int(llm.n_tokens)
        self.last_draft = None
        if drafter is not None and sampling.greedy and draft_tokens > 0:
            stats = self.last_draft = DraftStats()
            source = self._drafted(sampling, recent, drafter, draft_tokens, max_tokens, stats)
        else:
            source = self._sampled(sampling, recent)
        pieces = self._pieces
        learn = self.learn
        eog = self._eog
        is_set = cancel.is_set
        text_of = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
        completion: list[int] = []
        append = completion.append
        finish: FinishReason = "length"
        try:
            for tok in source:
                if is_set():
                    finish = "cancelled"
                    break
                piece = pieces.get(tok)
                if piece is None:
                    piece = learn(tok)
                if not piece and tok in eog:
                    finish = "stop"
                    break
                append(tok)
                if piece:
                    text = text_of(piece)
                    if text:
                        out, stopped = feed(text)
                        if out:
                            yield Delta(out)
                        if stopped:
                            finish = "stop"
                            break
                if len(completion) >= max_tokens:
                    break
        finally:
            source.close()
            # Record the completion tokens the KV cache holds (all but a last one never decoded), for
            # prefix reuse on the next turn; asking the cache costs nothing per token. Drafts verified
            # past the last token taken are dropped.
            end = start + len(completion)
            kv_end = int(C.llama_memory_seq_pos_max(self.mem, 0)) + 1
            if kv_end > end:
                C.llama_memory_seq_rm(self.mem, 0, end, -1)
                kv_end = end
            cached = min(len(completion), kv_end - start)
            if cached > 0:
                llm.input_ids[start : start + cached] = completion[:cached]
                llm.n_tokens = start + cached
        if finish == "length":
            tail = text_of(b"", final=True)
            if tail:
                out, stopped = feed(tail)
                if out:
                    yield Delta(out)
                if stopped:
                    finish = "stop"
        return finish, completion

    def _sampled(self, sampling: Sampling, recent: collections.deque[int]) -> Generator[int, None, None]:
        """Token by token: pick from the logits in the context, yield, decode the token alone."""
        ctx = self.ctx
        sampler = sampling.chain
        penalty = sampling.repeat_penalty if sampling.repeat_penalty != 1.0 else None
        present, freq = sampling.presence_penalty, sampling.frequency_penalty
        shaped = bool(present or freq) or penalty is not None
        # Greedy alone: the first largest logit, read in place. llama_sampler_sample would first copy the
        # whole vocabulary into a candidate array (73 us a token for SmolLM2's 49k, against 9 us for this).
        greedy = sampling.greedy
        argmax_of = _argmax_view(self.n_vocab)
        logits_of = C.llama_get_logits_ith
        sample = C.llama_sampler_sample
        decode = C.llama_decode
        one = self._one
        batch = self._one_batch
        in_grammar = _grammar_first(sampler, sampling.grammar, ctx, argmax_of) if sampling.grammar else None
        while True:
            if shaped and recent:
                _penalize(logits_of(ctx, -1), recent, penalty, present, freq)
            if greedy:
                tok = argmax_of(logits_of(ctx, -1))
            else:
                tok = in_grammar() if in_grammar is not None else sample(sampler, ctx, -1)
            recent.append(tok)
            yield tok
            one[0] = tok
            rc = decode(ctx, batch)
            if rc != 0:
                raise DecodeError(f"llama_decode failed ({rc})")

    def _drafted(
        self,
        sampling: Sampling,
        recent: collections.deque[int],
        drafter: Drafter,
        k: int,
        max_tokens: int,
        stats: DraftStats,
    ) -> Generator[int, None, None]:
        """Greedy tokens with drafts verified in batches (assistant.llm.drafting.speculate)."""
        llm = self.llm
        history: list[int] = llm.input_ids[: llm.n_tokens].tolist()
        target = _Verifier(self, sampling, recent, k + 1)
        try:
            drafter.begin(history)
            first = target.pick(-1)
            history.append(first)
            yield first
            yield from speculate(target, drafter, history, max_tokens - 1, k, stats)
        finally:
            target.free()

    # -- saved states (no logits) --
    def save_state(self) -> Any:
        from llama_cpp.llama import LlamaState

        ctx = self.ctx
        size = C.llama_state_get_size(ctx)
        buf = (ctypes.c_uint8 * int(size))()
        n = int(C.llama_state_get_data(ctx, buf, size))
        if n > int(size):
            raise RuntimeError("llama_state_get_data wrote past its buffer")
        llm = self.llm
        return LlamaState(
            input_ids=llm.input_ids[: llm.n_tokens].copy(),
            scores=np.empty((0, 0), dtype=np.single),
            n_tokens=int(llm.n_tokens),
            llama_state=ctypes.string_at(buf, n),
            llama_state_size=n,
            seed=int(llm._seed),
        )

    def load_state(self, state: Any) -> None:
        llm = self.llm
        size = int(state.llama_state_size)
        data = (ctypes.c_uint8 * size).from_buffer_copy(state.llama_state)
        if C.llama_state_set_data(self.ctx, data, size) != size:
            raise RuntimeError("llama_state_set_data failed")
        n = int(state.n_tokens)
        llm.input_ids[:n] = state.input_ids[:n]
        llm.n_tokens = n
        llm._requires_eval = True

    def cached_prefix(self, state: Any, tokens: Sequence[int]) -> int:
        ids = state.input_ids[: state.n_tokens]
        return _common_prefix_np(ids, tokens)


class _Verifier:
    """The context as assistant.llm.drafting.Target: a batch with logits for every position, the greedy
    pick with the loop's penalties, and the KV cache rolled back past rejected drafts."""

    def __init__(
        self, loop: NativeLoop, sampling: Sampling, recent: collections.deque[int], size: int
    ) -> None:
        self.ctx = loop.ctx
        self.mem = loop.mem
        self.recent = recent
        self.penalty = sampling.repeat_penalty if sampling.repeat_penalty != 1.0 else None
        self.present, self.freq = sampling.presence_penalty, sampling.frequency_penalty
        self.shaped = bool(self.present or self.freq) or self.penalty is not None
        self.argmax = _argmax_view(loop.n_vocab)
        self.batch = C.llama_batch_init(size, 0, 1)

    def evaluate(self, tokens: Sequence[int], pos: int) -> None:
        fill_batch(self.batch, tokens, pos)
        rc = C.llama_decode(self.ctx, self.batch)
        if rc != 0:
            raise DecodeError(f"llama_decode failed ({rc})")

    def pick(self, row: int) -> int:
        logits = C.llama_get_logits_ith(self.ctx, row)
        if self.shaped and self.recent:
            _penalize(logits, self.recent, self.penalty, self.present, self.freq)
        tok = self.argmax(logits)
        self.recent.append(tok)
        return tok

    def forget_from(self, pos: int) -> None:
        if not C.llama_memory_seq_rm(self.mem, 0, pos, -1):
            raise DecodeError('the KV cache cannot drop rejected drafts (set model.draft = "none")')

    def free(self) -> None:
        C.llama_batch_free(self.batch)


def _penalize(
    logits: Any, recent: collections.deque[int], penalty: float | None, present: float, freq: float
) -> None:
    """The repeat penalty (a logit of a recent token divided by it when positive, multiplied when not) and
    OpenAI's presence and frequency penalties after it, as in llama.cpp, on the recent tokens' logits only."""
    if present or freq:
        for t, count in collections.Counter(recent).items():
            v = logits[t]
            if penalty is not None:
                v = v / penalty if v > 0 else v * penalty
            logits[t] = v - count * freq - present
    elif penalty is not None:
        for t in set(recent):
            v = logits[t]
            logits[t] = v / penalty if v > 0 else v * penalty


def _argmax_view(n_vocab: int) -> Callable[[Any], int]:
    """A function from a logits pointer to the index of its first largest value among ``n_vocab`` (as
    llama.cpp's greedy sampler picks: the first of equal maxima), without a copy."""
    as_array = np.ctypeslib.as_array

    def argmax(ptr: Any) -> int:
        return int(as_array(ptr, shape=(n_vocab,)).argmax())

    return argmax


def _grammar_first(chain: Any, grammar: Any, ctx: Any, argmax_of: Callable[[Any], int]) -> Callable[[], int]:
    """Greedy under a grammar as llama.cpp's common sampler does it: the largest logit's token is checked
    against the grammar alone and taken when allowed; only otherwise is the chain (the grammar over the whole
    vocabulary, then greedy) applied. The same token either way (the first largest logit the grammar allows),
    without a copy of every logit and a grammar check of each token for most tokens: measured on qwen0.5b at
    one thread, a token of the skill choice took 35 ms that way against 22 ms unconstrained; 22 ms this way.
    (tests/llm/test_native_grammar.py)"""
    data: Any = C.llama_token_data(0, 0.0, 0.0)
    single = C.llama_token_data_array(ctypes.pointer(data), 1, -1, False)
    ref = ctypes.byref(single)
    logits_of, apply, accept, sample = (
        C.llama_get_logits_ith,
        C.llama_sampler_apply,
        C.llama_sampler_accept,
        C.llama_sampler_sample,
    )
    refused = float("-inf")

    def pick() -> int:
        tok = argmax_of(logits_of(ctx, -1))
        data.id, data.logit, data.p = tok, 0.0, 0.0
        single.size, single.selected, single.sorted = 1, -1, False
        apply(grammar, ref)
        if data.logit != refused:
            accept(chain, tok)  # every sampler of the chain takes it, the grammar advances
            return tok
        return int(sample(chain, ctx, -1))

    return pick


def _common_prefix_np(ids: Any, tokens: Sequence[int]) -> int:
    n = min(len(ids), len(tokens))
    if n == 0:
        return 0
    same = np.asarray(ids[:n]) == np.asarray(tokens[:n], dtype=np.intc)
    return n if bool(same.all()) else int(np.argmin(same))
