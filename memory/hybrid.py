"""Fusing the dense (Chroma) and keyword (FTS5 BM25) rankings, then recency and near-duplicate suppression.

Pure functions over ranked (id, score) lists, so fusion can be tuned offline on cached rankings.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

Ranking = Sequence[tuple[str, float]]  # (id, score), best first
FusionMethod = Literal["rrf", "minmax", "zscore"]


@dataclass
class Fused:
    id: str
    score: float
    retrievers: dict[str, dict[str, float]] = field(default_factory=dict)  # name -> {"rank", "score"}


def _normalise(ranking: Ranking, method: FusionMethod) -> tuple[dict[str, float], float]:
    """Normalised scores by id, and the value given to an id this retriever did not return."""
    scores = [s for _, s in ranking]
    if not scores:
        return {}, 0.0
    if method == "minmax":
        lo, hi = min(scores), max(scores)
        span = (hi - lo) or 1.0
        return {i: (s - lo) / span for i, s in ranking}, 0.0
    mean = statistics.fmean(scores)
    sd = statistics.pstdev(scores) or 1.0
    normed = {i: (s - mean) / sd for i, s in ranking}
    return normed, min(normed.values())


def fuse(
    rankings: Mapping[str, Ranking],
    weights: Mapping[str, float],
    method: FusionMethod = "zscore",
    rrf_k: float = 60.0,
    weight_of: Mapping[str, Mapping[str, float]] | None = None,
) -> list[Fused]:
    """One ranking from several. ``rrf``: sum of w/(k+rank). ``minmax``/``zscore``: weighted sum of
    per-retriever normalised scores, a missing id counting as that retriever's lowest score.

    ``weight_of`` (retriever -> id -> weight) overrides a retriever's weight for some ids: the kind of
    memory decides how far a retriever is trusted (the dense half is weak on short conversation turns)."""
    out: dict[str, Fused] = {}
    for name, ranking in rankings.items():
        for rank, (i, s) in enumerate(ranking, start=1):
            out.setdefault(i, Fused(i, 0.0)).retrievers[name] = {"rank": rank, "score": round(s, 6)}
    for name, ranking in rankings.items():
        w = weights.get(name, 1.0)
        per_id = (weight_of or {}).get(name, {})
        if not ranking or (w == 0 and not per_id):
            continue
        if method == "rrf":
            for rank, (i, _) in enumerate(ranking, start=1):
                out[i].score += per_id.get(i, w) / (rrf_k + rank)
            continue
        normed, missing = _normalise(ranking, method)
        for i, f in out.items():
            f.score += per_id.get(i, w) * normed.get(i, missing)
    return sorted(out.values(), key=lambda f: f.score, reverse=True)


def apply_recency(
    fused: list[Fused], created_at: Mapping[str, float], now: float, weight: float, half_life_days: float
) -> list[Fused]:
    """Add a mild preference for recent memories: up to ``weight`` times the spread of the fused scores,
    halving every ``half_life_days``. Relevance still dominates: a weight of 0.1 reorders near ties only."""
    if not fused or weight <= 0:
        return fused
    spread = (fused[0].score - fused[-1].score) or abs(fused[0].score) or 1.0
    for f in fused:
        age_days = max(0.0, now - created_at.get(f.id, now)) / 86400.0
        f.score += weight * spread * math.pow(0.5, age_days / half_life_days)
    return sorted(fused, key=lambda f: f.score, reverse=True)


_NORM_RE = re.compile(r"\w+", re.UNICODE)


def word_set(text: str) -> frozenset[str]:
    return frozenset(w.lower() for w in _NORM_RE.findall(text))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def suppress_near_duplicates(
    fused: Sequence[Fused], text_of: Callable[[str], str], k: int, threshold: float = 0.85
) -> tuple[list[Fused], dict[str, int]]:
    """The best ``k`` items with no two nearly the same text (word-set Jaccard >= threshold).

    Returns the kept items and, by kept id, how many near-duplicates each one hid."""
    kept: list[tuple[Fused, frozenset[str]]] = []
    hidden: dict[str, int] = {}
    for f in fused:
        words = word_set(text_of(f.id))
        dup = next((k_ for k_, w in kept if jaccard(words, w) >= threshold), None)
        if dup is not None:
            hidden[dup.id] = hidden.get(dup.id, 0) + 1
            for name, info in f.retrievers.items():  # the kept copy was found by this retriever too
                dup.retrievers.setdefault(name, info)
            continue
        kept.append((f, words))
        if len(kept) >= k:
            break
    return [f for f, _ in kept], hidden
