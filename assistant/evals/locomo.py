"""LoCoMo question answering as the paper scores it (Maharana et al., ACL 2024, task_eval/evaluation.py of
snap-research/locomo): the data (a BEIR-format ``locomo-dev`` folder), a fixed seeded sample, and token F1.

Scoring, per the paper's code:

- an answer and the reference are normalised (commas dropped, lower case, punctuation stripped, the words
  "a", "an", "the" and "and" dropped, whitespace collapsed) and each word Porter-stemmed (PyStemmer's
  ``porter``, the original algorithm; the paper used NLTK's, whose extensions stem a few rare words
  differently); F1 is over the bags of stems;
- multi-hop (category 1): the reference and the answer are split at commas; each part of the reference
  takes its best F1 against a part of the answer, and the mean of those is the score;
- open-domain (category 3): only the reference's part before a ";" counts;
- temporal (2) and single-hop (4): plain F1;
- adversarial (5) has no answer to match: the paper counts it right when the answer says "no information
  available" or "not mentioned". The daemon is told to say that it does not know, so ``declines`` also
  takes its own ways of saying so ("I don't know", "no information", ...). Adversarial is reported apart
  (the share declined) and left out of the overall F1, which is the mean over the questions of 1 to 4.
"""

from __future__ import annotations

import json
import random
import re
import string
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
ADVERSARIAL = 5
SCORED = (1, 2, 3, 4)  # categories with a reference answer: their mean is the overall F1
DEFAULT_SAMPLE_SEED = 26
DEFAULT_PER_CATEGORY = 4

_ARTICLES_RE = re.compile(r"\b(a|an|the|and)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)
# The paper's two phrases, then the ways the daemon's guide ("say that you don't know") comes out.
DECLINE_PHRASES = (
    "no information available", "not mentioned",
    "don't know", "do not know", "don't have", "do not have", "no information", "not sure", "cannot tell",
    "can't tell", "unable to", "not specified", "doesn't say", "does not say", "doesn't mention",
    "does not mention", "no record", "no mention",
)  # fmt: skip


# --- scoring ------------------------------------------------------------------------------------------


def normalize_answer(text: str) -> str:
    """The paper's normalisation: commas out, lower case, no punctuation, no a/an/the/and, single spaces."""
    text = text.replace(",", "").lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES_RE.sub(" ", text).split())


def stems(text: str) -> list[str]:
    import Stemmer  # PyStemmer; one per call: a stemmer is not thread-safe

    return list(Stemmer.Stemmer("porter").stemWords(normalize_answer(text).split()))


def token_f1(answer: str, reference: str) -> float:
    """F1 of the bags of stemmed, normalised words (0 when they share none)."""
    got, want = stems(answer), stems(reference)
    same = sum((Counter(got) & Counter(want)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(got), same / len(want)
    return 2 * precision * recall / (precision + recall)


def multi_hop_f1(answer: str, reference: str) -> float:
    """Each comma-separated part of the reference, matched with its best part of the answer; the mean."""
    parts = [p.strip() for p in answer.split(",")]
    wanted = [r.strip() for r in reference.split(",")]
    return sum(max(token_f1(p, r) for p in parts) for r in wanted) / len(wanted)


def declines(answer: str) -> bool:
    """Whether the answer says it does not know (the paper's phrases, and the daemon's)."""
    text = answer.lower().replace("\u2019", "'")
    return any(p in text for p in DECLINE_PHRASES)


def score_answer(category: int, answer: str, reference: str) -> float:
    """The paper's score of one answer: F1 for categories 1-4, 1.0 or 0.0 (declined or not) for 5."""
    if category == ADVERSARIAL:
        return 1.0 if declines(answer) else 0.0
    if category == 1:
        return multi_hop_f1(answer, reference)
    if category == 3:
        reference = reference.split(";")[0].strip()
    return token_f1(answer, reference)


# --- the data -----------------------------------------------------------------------------------------


class LocomoDataError(ValueError):
    pass


@dataclass(frozen=True)
class Question:
    id: str
    conversation: str
    category: int
    text: str
    answer: str  # the reference ("" for adversarial questions: they have none)
    evidence: tuple[str, ...]  # corpus ids of the turns that hold the answer

    @property
    def category_name(self) -> str:
        return CATEGORIES.get(self.category, str(self.category))


@dataclass
class Locomo:
    turns: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)  # conversation -> turns
    questions: list[Question] = field(default_factory=list)

    @property
    def conversations(self) -> list[str]:
        return list(self.turns)


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        raise LocomoDataError(f"{path} is missing (a locomo-dev folder holds corpus.jsonl and queries.jsonl)")
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def load_locomo(folder: Path) -> Locomo:
    """Turns per conversation in the order they were said, and the questions (file order)."""
    data = Locomo()
    for doc in _jsonl(folder / "corpus.jsonl"):
        conversation = str((doc.get("metadata") or {}).get("conversation_id", ""))
        if not conversation:
            raise LocomoDataError(f"corpus document {doc.get('_id')} has no metadata conversation_id")
        data.turns.setdefault(conversation, []).append((str(doc["_id"]), doc))
    for q in _jsonl(folder / "queries.jsonl"):
        meta = q.get("metadata") or {}
        conversation = str(meta.get("conversation_id", ""))
        if conversation not in data.turns:
            raise LocomoDataError(f"question {q.get('_id')}: no turns of conversation {conversation!r}")
        answer = meta.get("answer")
        evidence = tuple(f"{conversation}:{e}" for e in meta.get("evidence") or ())
        data.questions.append(Question(str(q["_id"]), conversation, int(meta["category"]), str(q["text"]),
                                       "" if answer is None else str(answer), evidence))  # fmt: skip
    return data


def sample(questions: Sequence[Question], per_category: int | None, seed: int = DEFAULT_SAMPLE_SEED,
           conversations: Sequence[str] = (), categories: Sequence[int] = ()) -> list[Question]:  # fmt: skip
    """Up to ``per_category`` questions of each category from each conversation (None: all of them), drawn
    from a seeded shuffle per (conversation, category): the same seed gives the same sample whatever else is
    chosen, and a smaller ``per_category`` takes a part of a larger one's sample; in file order."""
    groups: dict[tuple[str, int], list[Question]] = {}
    for q in questions:
        if (not conversations or q.conversation in conversations) and (
            not categories or q.category in categories
        ):
            groups.setdefault((q.conversation, q.category), []).append(q)
    chosen: set[str] = set()
    for (conversation, category), group in groups.items():
        if per_category is None or per_category >= len(group):
            chosen.update(q.id for q in group)
        else:
            order = sorted(group, key=lambda q: q.id)
            random.Random(f"{seed}:{conversation}:{category}").shuffle(order)
            chosen.update(q.id for q in order[:per_category])
    return [q for q in questions if q.id in chosen]


# --- the table ----------------------------------------------------------------------------------------


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarise(rows: Sequence[Mapping[str, Any]], conditions: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per condition: the mean score per category name, ``overall`` (categories 1-4), and the share of
    answerable questions the answer declined. ``rows`` carry ``category`` and per condition a
    ``scores[condition]`` and ``declined[condition]``."""
    out: dict[str, dict[str, Any]] = {}
    for condition in conditions:
        by: dict[str, Any] = {}
        for number, name in CATEGORIES.items():
            values = [r["scores"][condition] for r in rows if r["category"] == number]
            if values:
                by[name] = {"score": round(mean(values) or 0.0, 4), "questions": len(values)}
        answerable = [r for r in rows if r["category"] in SCORED]
        by["overall"] = {"score": round(mean([r["scores"][condition] for r in answerable]) or 0.0, 4),
                         "questions": len(answerable)}  # fmt: skip
        by["declined_answerable"] = round(
            mean([float(r["declined"][condition]) for r in answerable]) or 0.0, 4
        )
        out[condition] = by
    return out
