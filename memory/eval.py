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


def ingest(
    service: MemoryService, corpus: Mapping[str, Mapping[str, Any]], batch: int = 256,
    progress: Callable[[int], None] | None = None,
) -> None:
    items: list[NewMemory] = []
    for doc_id, doc in corpus.items():
        meta = {k: v for k, v in (doc.get("metadata") or {}).items() if isinstance(v, str | int | float | bool)}
        text = doc_text(doc)
        if not text.strip():
            continue
        items.append(NewMemory(text, "note", metadata={**meta, "doc_id": doc_id}))
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


@dataclass
class EvalResult:
    split: str
    queries: int
    documents: int
    group_by: str | None
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # mode -> metric -> value

    def as_dict(self) -> dict[str, Any]:
        return {"split": self.split, "queries": self.queries, "documents": self.documents,
                "group_by": self.group_by, "metrics": self.metrics}


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
        result.metrics[mode] = score_runs(runs, data.qrels)
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
    return "\n".join(lines)
