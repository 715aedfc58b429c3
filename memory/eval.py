"""Retrieval evaluation on a BEIR-format folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv).

Runs the real memory code end to end: the corpus goes into a fresh memory directory (Chroma + FTS5)
through ``MemoryService.add_many`` and every query goes through ``MemoryService.search``, the function
the daemon uses, once per mode (dense, keyword, hybrid).
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memory.keyword import Filters
from memory.service import MemoryService, NewMemory

MODES = ("dense", "keyword", "hybrid")
CUTOFFS = (5, 10)


@dataclass
class Dataset:
    corpus: dict[str, dict[str, Any]]
    queries: dict[str, dict[str, Any]]
    qrels: dict[str, dict[str, int]]  # query id -> doc id -> grade


class DatasetError(ValueError):
    pass


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        raise DatasetError(f"{path} is missing (a BEIR folder holds corpus.jsonl, queries.jsonl, qrels/)")
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DatasetError(f"{path}:{n}: not JSON: {exc}") from None


def load_beir(folder: Path, split: str = "test") -> Dataset:
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.exists():
        have = sorted(p.stem for p in (folder / "qrels").glob("*.tsv")) if (folder / "qrels").is_dir() else []
        raise DatasetError(f"{qrels_path} is missing; splits here: {', '.join(have) or 'none'}")
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    with qrels_path.open(encoding="utf-8") as f:
        for row in csv.reader(f, delimiter="\t"):
            if len(row) < 3 or row[0] == "query-id":
                continue
            qrels[row[0]][row[1]] = int(row[2])
    corpus = {str(d["_id"]): d for d in _jsonl(folder / "corpus.jsonl")}
    queries = {str(q["_id"]): q for q in _jsonl(folder / "queries.jsonl") if str(q["_id"]) in qrels}
    return Dataset(corpus, queries, {q: r for q, r in qrels.items() if q in queries})


def doc_text(doc: Mapping[str, Any]) -> str:
    title = (doc.get("title") or "").strip()
    text = (doc.get("text") or "").strip()
    return f"{title}\n{text}" if title and text else title or text


_SAID_FORMATS = ("%I:%M %p on %d %B, %Y", "%d %B, %Y", "%d %B %Y")  # LoCoMo's "1:56 pm on 8 May, 2023"


def said_at(meta: Mapping[str, Any]) -> datetime | None:
    """When a document was said or written: metadata ``created_at`` (ISO 8601) or ``session_date_time``
    (LoCoMo); None when it has neither (the memory then gets the time of ingest)."""
    if isinstance(meta.get("created_at"), str):
        try:
            when = datetime.fromisoformat(meta["created_at"].replace("Z", "+00:00"))
        except ValueError:
            when = None
        if when is not None:
            return when if when.tzinfo else when.replace(tzinfo=UTC)
    said = meta.get("session_date_time")
    if isinstance(said, str):
        for fmt in _SAID_FORMATS:
            try:
                return datetime.strptime(said.strip(), fmt).replace(tzinfo=UTC)
            except ValueError:
                continue
    return None


def as_memory(doc_id: str, doc: Mapping[str, Any]) -> NewMemory | None:
    """A BEIR document as the memory a client would add: a document with a ``conversation_id`` in its
    metadata is a turn of that conversation (stored with it, at the time it was said, so the service
    indexes it with the turns before it and its dates, as it does a chat turn); others are notes."""
    meta = {k: v for k, v in (doc.get("metadata") or {}).items() if isinstance(v, str | int | float | bool)}
    text = doc_text(doc)
    if not text.strip():
        return None
    conversation = meta.get("conversation_id")
    return NewMemory(text, "note", str(conversation) if conversation is not None else None,
                     {**meta, "doc_id": doc_id}, said_at(meta))


def ingest(
    service: MemoryService, corpus: Mapping[str, Mapping[str, Any]], batch: int = 256,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Documents in file order (a conversation's turns in the order they were said)."""
    items: list[NewMemory] = []
    for doc_id, doc in corpus.items():
        memory = as_memory(doc_id, doc)
        if memory is None:
            continue
        items.append(memory)
        if len(items) >= batch:
            service.add_many(items)
            if progress:
                progress(len(items))
            items = []
    if items:
        service.add_many(items)
        if progress:
            progress(len(items))


def ndcg_at(ranked: Sequence[str], rels: Mapping[str, int], k: int) -> float:
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((g for g in rels.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: Sequence[str], rels: Mapping[str, int], k: int) -> float:
    relevant = {d for d, g in rels.items() if g > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def score_runs(runs: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]) -> dict[str, float]:
    n = len(qrels) or 1
    return {
        "ndcg@10": sum(ndcg_at(runs.get(q, []), r, 10) for q, r in qrels.items()) / n,
        "recall@5": sum(recall_at(runs.get(q, []), r, 5) for q, r in qrels.items()) / n,
        "recall@10": sum(recall_at(runs.get(q, []), r, 10) for q, r in qrels.items()) / n,
    }


def query_filters(query: Mapping[str, Any], group_by: str | None) -> Filters:
    if not group_by:
        return Filters()
    value = (query.get("metadata") or {}).get(group_by)
    if value is None:
        raise DatasetError(f"query {query['_id']} has no metadata {group_by!r} to group by")
    return Filters(where=((group_by, value),))


def query_category(query: Mapping[str, Any]) -> str | None:
    """The question's category when the query carries one (metadata ``category_name``, else ``category``)."""
    meta = query.get("metadata") or {}
    value = meta.get("category_name", meta.get("category"))
    return None if value is None else str(value)


@dataclass
class EvalResult:
    split: str
    queries: int
    documents: int
    group_by: str | None
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # mode -> metric -> value
    # mode -> category -> metric -> value, when the queries carry a category (plus "queries": how many)
    categories: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    runs: dict[str, dict[str, list[str]]] = field(default_factory=dict, repr=False)  # mode -> query -> docs

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"split": self.split, "queries": self.queries, "documents": self.documents,
                               "group_by": self.group_by, "metrics": self.metrics}
        if self.categories:
            out["categories"] = self.categories
        return out


def score_by_category(
    runs: Mapping[str, Sequence[str]], data: Dataset, qids: Sequence[str] | None = None
) -> dict[str, dict[str, float]]:
    """``score_runs`` per query category (only queries that carry one), each with its query count."""
    by: dict[str, dict[str, Mapping[str, int]]] = defaultdict(dict)
    for qid in qids if qids is not None else data.qrels:
        category = query_category(data.queries[qid])
        if category is not None:
            by[category][qid] = data.qrels[qid]
    return {c: {**score_runs(runs, q), "queries": len(q)} for c, q in sorted(by.items())}


def evaluate(
    service: MemoryService, data: Dataset, split: str, group_by: str | None = None,
    modes: Sequence[str] = MODES,
) -> EvalResult:
    result = EvalResult(split, len(data.queries), len(data.corpus), group_by)
    for mode in modes:
        runs: dict[str, list[str]] = {}
        for qid, q in data.queries.items():
            hits = service.search(q["text"], k=10, filters=query_filters(q, group_by), mode=mode,  # type: ignore[arg-type]
                                  recency=False)
            runs[qid] = [str(h.record.metadata.get("doc_id")) for h in hits]
        result.runs[mode] = runs
        result.metrics[mode] = score_runs(runs, data.qrels)
        categories = score_by_category(runs, data)
        if categories:
            result.categories[mode] = categories
    return result


def format_table(result: EvalResult) -> str:
    head = f"{'retriever':<10} {'nDCG@10':>8} {'Recall@5':>9} {'Recall@10':>10}"
    lines = [
        f"split {result.split}: {result.queries} queries, {result.documents} documents"
        + (f", grouped by {result.group_by}" if result.group_by else ""),
        head,
        "-" * len(head),
    ]
    for mode, m in result.metrics.items():
        lines.append(f"{mode:<10} {m['ndcg@10']:>8.4f} {m['recall@5']:>9.4f} {m['recall@10']:>10.4f}")
    if result.categories:
        modes = list(result.categories)
        lines += ["", "nDCG@10 / Recall@10 by question category", f"{'category':<14} {'queries':>7} "
                  + " ".join(f"{m:>15}" for m in modes)]
        for category, first in next(iter(result.categories.values())).items():
            cells = " ".join(
                f"{result.categories[m][category]['ndcg@10']:>7.4f}/{result.categories[m][category]['recall@10']:.4f}"
                for m in modes
            )
            lines.append(f"{category:<14} {int(first['queries']):>7} {cells}")
    return "\n".join(lines)
