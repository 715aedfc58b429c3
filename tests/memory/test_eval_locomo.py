"""One held-out LoCoMo conversation through the real memory code (the full run is `assistant eval retrieval
../shared/data/locomo-dev --split dev --group-by conversation_id`, see docs/memory.md).

The split rule (benchmarks/ablate_locomo.py) tunes on the first three conversation ids sorted, so conv-42
and conv-43 are held out; this test takes conv-42 (629 turns, 260 questions).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memory.eval import evaluate, ingest, load_beir
from memory.opening import open_memory
from tests.conftest import shared_data
from tests.fakes import FixedClock

pytestmark = pytest.mark.slow

CONVERSATION = "conv-42"


def _one_conversation(src: Path, dst: Path) -> None:
    data = load_beir(src, "dev")
    qids = [q for q, v in data.queries.items() if v["metadata"]["conversation_id"] == CONVERSATION]
    (dst / "qrels").mkdir(parents=True)
    with (dst / "corpus.jsonl").open("w") as f:
        for doc in data.corpus.values():
            if doc["metadata"]["conversation_id"] == CONVERSATION:
                f.write(json.dumps(doc) + "\n")
    with (dst / "queries.jsonl").open("w") as f:
        for q in qids:
            f.write(json.dumps(data.queries[q]) + "\n")
    (dst / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{q}\t{d}\t{g}\n" for q in qids for d, g in data.qrels[q].items()))


def test_hybrid_beats_dense_and_bm25_on_a_held_out_conversation(tmp_path: Path) -> None:
    _one_conversation(shared_data("locomo-dev"), tmp_path / "beir")
    data = load_beir(tmp_path / "beir", "dev")
    service = open_memory(tmp_path / "mem", FixedClock(), recency=False)
    ingest(service, data.corpus)
    result = evaluate(service, data, "dev", group_by="conversation_id")
    service.close()
    m = {mode: v["ndcg@10"] for mode, v in result.metrics.items()}
    print(m, result.categories["hybrid"])
    assert m["hybrid"] > m["dense"] and m["hybrid"] > m["keyword"]
    # measured: dense 0.273, BM25 0.542, hybrid 0.562 nDCG@10, hybrid R@10 0.726
    assert m["hybrid"] >= 0.55 and result.metrics["hybrid"]["recall@10"] >= 0.70
    assert set(result.categories["hybrid"]) == {"adversarial", "multi-hop", "open-domain", "single-hop", "temporal"}
