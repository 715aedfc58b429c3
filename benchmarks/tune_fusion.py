"""Tune hybrid fusion on a BEIR split (SciFact train) from cached per-retriever rankings, then report a split.

    .venv/bin/python benchmarks/tune_fusion.py ../shared/data/scifact --index /tmp/scifact-index \
        --tune-split train --report-split test

The index directory is built once (the slow part: embedding the corpus) and reused on later runs.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

from assistant.core.clock import SystemClock
from memory.eval import ingest, load_beir, query_filters, score_runs
from memory.hybrid import fuse
from memory.opening import open_memory


def rankings(service, data, depth):  # noqa: ANN001, ANN201
    out = {}
    for qid, q in data.queries.items():
        r = service.rankings(q["text"], query_filters(q, None), "hybrid", depth)
        out[qid] = r
    return out


def doc_runs(service, ranks, params, doc_of):  # noqa: ANN001, ANN201
    runs = {}
    for qid, r in ranks.items():
        if params["mode"] == "dense":
            fused = [i for i, _ in r["dense"]]
        elif params["mode"] == "keyword":
            fused = [i for i, _ in r["keyword"]]
        else:
            f = fuse(r, {"dense": params["wd"], "keyword": 1.0}, params["method"], params.get("rrf_k", 60))
            fused = [x.id for x in f]
        runs[qid] = [doc_of[i] for i in fused[:10]]
    return runs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path)
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--tune-split", default="train")
    ap.add_argument("--report-split", default="test")
    ap.add_argument("--depth", type=int, default=100)
    args = ap.parse_args()
    fresh = not (args.index / "keyword.sqlite3").exists()
    service = open_memory(args.index, SystemClock(), max_chars=1_000_000)
    if fresh:
        data = load_beir(args.folder, args.report_split)
        t = time.perf_counter()
        ingest(service, data.corpus)
        print(f"ingested {len(data.corpus)} docs in {time.perf_counter() - t:.0f}s")
    recs, _ = service.list(limit=10**7)
    doc_of = {r.id: str(r.metadata["doc_id"]) for r in recs}
    grids = [{"mode": "dense"}, {"mode": "keyword"}]
    grids += [{"mode": "hybrid", "method": "rrf", "wd": w, "rrf_k": k}
              for w, k in itertools.product([0.5, 0.75, 1.0, 1.5], [10, 30, 60])]
    grids += [{"mode": "hybrid", "method": m, "wd": w}
              for m, w in itertools.product(["minmax", "zscore"], [0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0])]
    results = {}
    for split in (args.tune_split, args.report_split):
        data = load_beir(args.folder, split)
        ranks = rankings(service, data, args.depth)
        for p in grids:
            key = json.dumps(p, sort_keys=True)
            results.setdefault(key, {})[split] = score_runs(doc_runs(service, ranks, p, doc_of), data.qrels)
    best = max((k for k in results if '"hybrid"' in k), key=lambda k: results[k][args.tune_split]["ndcg@10"])
    for key, r in sorted(results.items(), key=lambda kv: -kv[1][args.tune_split]["ndcg@10"]):
        mark = " <- best on " + args.tune_split if key == best else ""
        print(f"{key:<70} {args.tune_split} {r[args.tune_split]['ndcg@10']:.4f}  "
              f"{args.report_split} {r[args.report_split]['ndcg@10']:.4f}{mark}")


if __name__ == "__main__":
    main()
