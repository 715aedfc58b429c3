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
    ) -> Generator[Delta, None, tuple[FinishReason, list[int]]]:
        """Sample, emit and decode until end of generation, a stop string, ``max_tokens`` or a cancel.

        The context must hold the prompt's logits (``prefill``). Returns (finish reason, completion
        tokens); the last completion token is not decoded (nothing reads its logits).
        """
        ctx = self.ctx
        sampler = sampling.chain
        penalty = sampling.repeat_penalty if sampling.repeat_penalty != 1.0 else None
        present, freq = sampling.presence_penalty, sampling.frequency_penalty
        shaped = bool(present or freq)  # OpenAI's penalties, after the repeat penalty as in llama.cpp
        # Greedy alone: the first largest logit, read in place. llama_sampler_sample would first copy the
        # whole vocabulary into a candidate array (73 us a token for SmolLM2's 49k, against 9 us for this).
        greedy = sampling.greedy
        argmax_of = _argmax_view(self.n_vocab)
        recent: collections.deque[int] = collections.deque(maxlen=PENALTY_LAST_N)
        logits_of = C.llama_get_logits_ith
        sample = C.llama_sampler_sample
        decode = C.llama_decode
        one = self._one
        batch = self._one_batch
        pieces = self._pieces
        learn = self.learn
        eog = self._eog
        is_set = cancel.is_set
        text_of = codecs.getincrementaldecoder("utf-8")(errors="replace").decode
        completion: list[int] = []
        append = completion.append
        finish: FinishReason = "length"
        llm = self.llm
        start = int(llm.n_tokens)
        try:
            while True:
                if is_set():
                    finish = "cancelled"
                    break
                if shaped and recent:
                    logits = logits_of(ctx, -1)
                    for t, count in collections.Counter(recent).items():
                        v = logits[t]
                        if penalty is not None:
                            v = v / penalty if v > 0 else v * penalty
                        logits[t] = v - count * freq - present
                elif penalty is not None and recent:
                    logits = logits_of(ctx, -1)
                    for t in set(recent):
                        v = logits[t]
                        logits[t] = v / penalty if v > 0 else v * penalty
                tok = argmax_of(logits_of(ctx, -1)) if greedy else sample(sampler, ctx, -1)
                recent.append(tok)
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
                one[0] = tok
                rc = decode(ctx, batch)
                if rc != 0:
                    raise DecodeError(f"llama_decode failed ({rc})")
        finally:
            # Record the completion tokens the KV cache holds (all but a last one never decoded), for
            # prefix reuse on the next turn; asking the cache costs nothing per token.
            cached = min(len(completion), int(C.llama_memory_seq_pos_max(self.mem, 0)) + 1 - start)
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


def _argmax_view(n_vocab: int) -> Callable[[Any], int]:
    """A function from a logits pointer to the index of its first largest value among ``n_vocab`` (as
    llama.cpp's greedy sampler picks: the first of equal maxima), without a copy."""
    as_array = np.ctypeslib.as_array

    def argmax(ptr: Any) -> int:
        return int(as_array(ptr, shape=(n_vocab,)).argmax())

    return argmax


def _common_prefix_np(ids: Any, tokens: Sequence[int]) -> int:
    n = min(len(ids), len(tokens))
    if n == 0:
        return 0
    same = np.asarray(ids[:n]) == np.asarray(tokens[:n], dtype=np.intc)
    return n if bool(same.all()) else int(np.argmin(same))
