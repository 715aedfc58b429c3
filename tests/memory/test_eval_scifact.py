"""A SciFact subset through the real memory code (the full run is `assistant eval retrieval`, see docs/memory.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memory.eval import evaluate, ingest, load_beir
from memory.opening import open_memory
from tests.conftest import shared_data
from tests.fakes import FixedClock

pytestmark = pytest.mark.slow


def _subset(src: Path, dst: Path, n_queries: int = 40, n_distractors: int = 200) -> None:
    """The first ``n_queries`` test queries, their relevant documents and ``n_distractors`` others."""
    data = load_beir(src, "test")
    qids = sorted(data.queries, key=int)[:n_queries]
    relevant = {d for q in qids for d in data.qrels[q]}
    others = [d for d in sorted(data.corpus, key=int) if d not in relevant][:n_distractors]
    (dst / "qrels").mkdir(parents=True)
    with (dst / "corpus.jsonl").open("w") as f:
        for d in sorted(relevant) + others:
            f.write(json.dumps(data.corpus[d]) + "\n")
    with (dst / "queries.jsonl").open("w") as f:
        for q in qids:
            f.write(json.dumps(data.queries[q]) + "\n")
    (dst / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{q}\t{d}\t{g}\n" for q in qids for d, g in data.qrels[q].items()))


def test_hybrid_beats_dense_and_bm25_on_a_scifact_subset(tmp_path: Path) -> None:
    _subset(shared_data("scifact"), tmp_path / "beir")
    data = load_beir(tmp_path / "beir", "test")
    service = open_memory(tmp_path / "mem", FixedClock(), max_chars=1_000_000, recency=False)
    ingest(service, data.corpus)
    result = evaluate(service, data, "test")
    service.close()
    m = {mode: v["ndcg@10"] for mode, v in result.metrics.items()}
    print(m)
    assert m["hybrid"] > m["dense"] and m["hybrid"] > m["keyword"]
