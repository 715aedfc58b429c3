"""How fast the model reads a prompt, measured on its own recent prefills, and the recall budget that follows.

Recalled memories go into the newest user message, so every token of them is read before the first token of
the answer: on a slow model (the 1.5B on a Pi reads about 25 tokens a second) a full recall block of 512
tokens is 20 s of waiting. ``recall_budget`` keeps the block to what the model reads in
``memory.recall_seconds``, never above the ``memory.recall_token_budget`` setting nor below a floor that
holds two or three short notes.
"""

from __future__ import annotations

import threading

# A prefill shorter than this times the call's overheads more than the reading.
MIN_TOKENS = 32


class PrefillMeter:
    """An exponentially weighted mean of prompt tokens read per second (thread-safe)."""

    def __init__(self, weight: float = 0.3) -> None:
        self.weight = weight
        self._rate: float | None = None
        self._lock = threading.Lock()

    def add(self, tokens: int, seconds: float) -> None:
        if tokens < MIN_TOKENS or seconds <= 0:
            return
        rate = tokens / seconds
        with self._lock:
            self._rate = rate if self._rate is None else self._rate + self.weight * (rate - self._rate)

    def rate(self) -> float | None:
        with self._lock:
            return self._rate


def recall_budget(meter: PrefillMeter, *, ceiling: int, seconds: float, floor: int = 96) -> int:
    """The recall block's token budget: what the model reads in ``seconds`` at its measured rate, within
    [min(floor, ceiling), ceiling]; the ceiling alone while nothing is measured or ``seconds`` is 0."""
    rate = meter.rate()
    if rate is None or seconds <= 0:
        return ceiling
    return max(min(floor, ceiling), min(ceiling, int(rate * seconds)))
