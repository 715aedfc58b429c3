"""The native loop's greedy pick: the first largest logit, read in place (no llama.cpp model needed)."""

from __future__ import annotations

import ctypes

import pytest

llama_cpp = pytest.importorskip("llama_cpp")

from assistant.llm.native_loop import _argmax_view  # noqa: E402


def test_the_first_of_equal_maxima_as_llama_cpps_greedy_sampler_picks() -> None:
    logits = (ctypes.c_float * 6)(0.5, 3.0, -1.0, 3.0, 2.9, float("-inf"))
    assert _argmax_view(6)(ctypes.cast(logits, ctypes.POINTER(ctypes.c_float))) == 1


def test_reads_the_logits_in_place_each_time() -> None:
    logits = (ctypes.c_float * 4)(0.0, 1.0, 2.0, 3.0)
    ptr = ctypes.cast(logits, ctypes.POINTER(ctypes.c_float))
    argmax = _argmax_view(4)
    assert argmax(ptr) == 3
    logits[0] = 9.0  # the next token's logits, written where the context keeps them
    assert argmax(ptr) == 0


def test_only_the_vocabulary_is_read() -> None:
    logits = (ctypes.c_float * 5)(1.0, 2.0, 0.0, 0.0, 99.0)  # past the vocabulary: never a token
    assert _argmax_view(3)(ctypes.cast(logits, ctypes.POINTER(ctypes.c_float))) == 1
