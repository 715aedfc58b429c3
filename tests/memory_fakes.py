"""A fast stand-in for the sentence-transformers embedder (the real one is tested in memory/test_real.py), and
the daemon built whole with memory on that embedder (``memory_services``); a recall of a test's own goes to
``build_services(recall=...)``."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memory.embedder import split_by_tokens
from memory.opening import open_memory
from memory.service import MemoryService

if TYPE_CHECKING:
    from assistant.config import Settings
    from assistant.core.clock import Clock
    from assistant.llm.types import LLMBackend
    from assistant.services import Services

_WORD = re.compile(r"\w+")


class HashingEmbedder:
    """Bag of words hashed into 384 dimensions, unit length: texts sharing words are similar."""

    dim = 384
    loaded = True

    def __init__(self) -> None:
        self.calls = 0

    def _vec(self, text: str) -> list[float]:
        v = [0.0] * self.dim
        for w in _WORD.findall(text.lower()):
            h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "little")
            v[h % self.dim] += 1.0
        n = math.sqrt(sum(x * x for x in v)) or 1.0
        if n == 1.0 and not any(v):
            v[0] = 1.0
        return [x / n for x in v]

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        return [self._vec(t) for t in texts]

    def token_count(self, text: str) -> int:
        return len(text.split())

    def chunk(self, text: str, max_tokens: int | None = None, overlap: int = 8) -> list[str]:
        return split_by_tokens(text, lambda s: len(s.split()), max_tokens or 64, overlap)


def fake_memory(directory: Path, clock: object, **kw: object) -> MemoryService:
    return open_memory(directory, clock, embedder=HashingEmbedder(), **kw)  # type: ignore[arg-type]


def memory_settings(data_dir: Path, *, scheduler: bool = False, **memory: Any) -> Settings:
    """Settings with memory on (``enabled=False`` turns it off), ``memory`` holding other memory.* keys
    (``recall_min_similarity=0.0``), and the scheduler off unless asked for."""
    from assistant.config import load_settings

    return load_settings(
        None, data_dir=data_dir, memory={"enabled": True, **memory}, scheduler={"enabled": scheduler}
    )


def memory_services(data_dir: Path, clock: Clock, llm: LLMBackend, **settings: Any) -> Services:
    """The daemon built whole (``build_services``) with memory on the hashing embedder: recall, ratings and
    the rules layer on that memory; ``settings`` as ``memory_settings`` takes them."""
    from assistant.services import build_services

    return build_services(
        memory_settings(data_dir, **settings), clock=clock, llm=llm, embedder=HashingEmbedder()
    )


