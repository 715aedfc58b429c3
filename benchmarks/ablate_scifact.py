"""Which part of the hybrid search bought how much, on a BEIR split (uses an index built by tune_fusion.py
or `assistant eval retrieval --index`):

    .venv/bin/python benchmarks/ablate_scifact.py ../shared/data/scifact --index /tmp/scifact-index --split test

Rows: BM25 tokenizer/stopword variants (FTS5 indexes rebuilt in a temp dir, no embeddings needed), dense
with and without chunking (no chunking = only each document's first 256-token window, which is what the
model sees of an unchunked document), and fusion methods on top.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import memory.keyword as kw
from assistant.core.clock import SystemClock
from memory.eval import doc_text, load_beir, score_runs
from memory.hybrid import fuse
from memory.keyword import KeywordIndex, MemoryRecord
from memory.opening import open_memory


def keyword_variant(texts: dict[str, str], tmp: Path, tokenizer: str, stop: frozenset[str]) -> KeywordIndex:
    schema = kw._SCHEMA
    kw._SCHEMA = schema.replace("porter unicode61 remove_diacritics 2", tokenizer)
    try:
        idx = KeywordIndex(tmp / f"{len(list(tmp.iterdir()))}.sqlite3")
    finally:
        kw._SCHEMA = schema
    idx._stop = stop
    recs = [MemoryRecord(d, t, "note", None, 0.0, {}) for d, t in texts.items()]
    idx.insert(recs, [1] * len(recs))
    return idx


# memory.keyword_max_df values tried, with min_df_rows 0 (what leaving common terms out costs where it
# applies; with the default MIN_DF_ROWS nothing is left out of a 5,183-document corpus)
MAX_DFS = (0.5, 0.3, 0.2, 0.1, 0.05)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path)
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--depth", type=int, default=100)
    args = ap.parse_args()
    from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_EN_PLUS

    data = load_beir(args.folder, args.split)
    texts = {d: doc_text(doc) for d, doc in data.corpus.items() if doc_text(doc)}
    service = open_memory(args.index, SystemClock(), recency=False)
    recs, _ = service.list(limit=10**7)
    doc_of = {r.id: str(r.metadata["doc_id"]) for r in recs}

    def top10(ranking: list[tuple[str, float]], mapping: dict[str, str] | None = None) -> list[str]:
        return [(mapping or {}).get(i, i) for i, _ in ranking[:10]]

    rows: list[tuple[str, float, float]] = []
    kw_runs: dict[str, dict[str, list[tuple[str, float]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, tok, stop in [
            ("BM25 no stemming, no stopwords", "unicode61 remove_diacritics 2", frozenset()),
            ("BM25 Porter stemming, no stopwords", "porter unicode61 remove_diacritics 2", frozenset()),
            ("BM25 Porter + Lucene stopwords (33)", "porter unicode61 remove_diacritics 2",
             frozenset(STOPWORDS_EN)),
            ("BM25 Porter + NLTK stopwords (179) [used]", "porter unicode61 remove_diacritics 2",
             frozenset(STOPWORDS_EN_PLUS)),
        ]:
            idx = keyword_variant(texts, Path(tmp), tok, stop)
            runs = {q: idx.search(v["text"], args.depth, max_df=None) for q, v in data.queries.items()}
            kw_runs[name] = runs
            m = score_runs({q: top10(r) for q, r in runs.items()}, data.qrels)
            rows.append((name, m["ndcg@10"], m["recall@10"]))
            if name.endswith("[used]"):  # then without the terms held by more than a share of the documents
                for max_df in MAX_DFS:
                    pruned = {q: idx.search(v["text"], args.depth, max_df=max_df, min_df_rows=0)
                              for q, v in data.queries.items()}
                    kw_runs[f"df {max_df}"] = pruned
                    m = score_runs({q: top10(r) for q, r in pruned.items()}, data.qrels)
                    rows.append((f"  terms in <= {max_df:.0%} of documents", m["ndcg@10"], m["recall@10"]))
            idx.close()

    dense_full: dict[str, list[tuple[str, float]]] = {}
    dense_first: dict[str, list[tuple[str, float]]] = {}
    coll = service.vectors.collection
    for q, v in data.queries.items():
        vec = service.query_vector(v["text"])
        got = coll.query(query_embeddings=[vec], n_results=400, include=["distances"])
        best: dict[str, float] = {}
        first: dict[str, float] = {}
        for cid, dist in zip(got["ids"][0], got["distances"][0], strict=True):
            mid, _, n = cid.rpartition("#")
            d = doc_of[mid]
            best[d] = max(best.get(d, -2.0), 1 - dist)
            if n == "0":
                first[d] = 1 - dist
        dense_full[q] = sorted(best.items(), key=lambda x: -x[1])[: args.depth]
        dense_first[q] = sorted(first.items(), key=lambda x: -x[1])[: args.depth]
    for name, runs in [("dense, first 256-token window only", dense_first),
                       ("dense, chunked, best chunk [used]", dense_full)]:
        m = score_runs({q: top10(r) for q, r in runs.items()}, data.qrels)
        rows.append((name, m["ndcg@10"], m["recall@10"]))

    used_kw = kw_runs["BM25 Porter + NLTK stopwords (179) [used]"]
    for name, dense, kwr, method, w, k in [
        ("hybrid RRF k=60 (untuned)", dense_full, used_kw, "rrf", 1.0, 60),
        ("hybrid z-score, dense unchunked", dense_first, used_kw, "zscore", 1.0, 60),
        ("hybrid z-score, BM25 unstemmed", dense_full, kw_runs["BM25 no stemming, no stopwords"], "zscore",
         1.0, 60),
        ("hybrid min-max w=1", dense_full, used_kw, "minmax", 1.0, 60),
        ("hybrid z-score w=1 [used]", dense_full, used_kw, "zscore", 1.0, 60),
    ] + [(f"  hybrid, BM25 terms in <= {max_df:.0%} of documents", dense_full, kw_runs[f"df {max_df}"], "zscore",
          1.0, 60) for max_df in MAX_DFS]:
        runs = {q: [f.id for f in fuse({"dense": dense[q], "keyword": kwr[q]}, {"dense": w, "keyword": 1.0},
                                       method, k)] for q in data.queries}
        m = score_runs(runs, data.qrels)
        rows.append((name, m["ndcg@10"], m["recall@10"]))
    print(f"split {args.split}: {len(data.queries)} queries")
    print(f"{'variant':<45} {'nDCG@10':>8} {'R@10':>6}")
    for name, n, r in rows:
        print(f"{name:<45} {n:>8.4f} {r:>6.3f}")


if __name__ == "__main__":
    main()
