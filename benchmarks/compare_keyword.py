"""Keyword index choice: bm25s vs SQLite FTS5, by retrieval quality and by the cost of staying in step.

    .venv/bin/python benchmarks/compare_keyword.py ../shared/data/scifact --split test

Quality: nDCG@10 on the BEIR split, both over title + text, English stemming, the same stopwords.
Upkeep: time to index the corpus from scratch, then what adding ONE document costs (FTS5: an insert in a
durable transaction; bm25s: its index is static, so a rebuild), at the corpus size and at 100k short texts.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from memory.eval import doc_text, load_beir, score_runs
from memory.keyword import KeywordIndex, MemoryRecord, _stopwords


def fts5_index(texts: dict[str, str], path: Path) -> tuple[KeywordIndex, float]:
    idx = KeywordIndex(path)
    recs = [MemoryRecord(i, t, "note", None, 0.0, {}) for i, t in texts.items()]
    t0 = time.perf_counter()
    for s in range(0, len(recs), 1000):
        idx.insert(recs[s : s + 1000], [1] * len(recs[s : s + 1000]))
    return idx, time.perf_counter() - t0


def bm25s_index(texts: dict[str, str], stop: list[str]):  # noqa: ANN201
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    t0 = time.perf_counter()
    tokens = bm25s.tokenize(list(texts.values()), stopwords=stop, stemmer=stemmer, show_progress=False)
    retriever = bm25s.BM25(method="lucene", k1=1.2, b=0.75)
    retriever.index(tokens, show_progress=False)
    return retriever, stemmer, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path)
    ap.add_argument("--split", default="test")
    args = ap.parse_args()
    import bm25s

    data = load_beir(args.folder, args.split)
    texts = {d: doc_text(doc) for d, doc in data.corpus.items()}
    ids = list(texts)
    stop = sorted(_stopwords())
    with tempfile.TemporaryDirectory() as tmp:
        fts, fts_build = fts5_index(texts, Path(tmp) / "k.sqlite3")
        t0 = time.perf_counter()
        runs = {q: [i for i, _ in fts.search(v["text"], 10)] for q, v in data.queries.items()}
        fts_q = (time.perf_counter() - t0) / len(runs) * 1000
        fts_m = score_runs(runs, data.qrels)
        t0 = time.perf_counter()
        fts.insert([MemoryRecord("new", "one more document about T cells", "note", None, 0.0, {})], [1])
        fts_add = (time.perf_counter() - t0) * 1000
        fts.close()
    bm, stemmer, bm_build = bm25s_index(texts, stop)
    t0 = time.perf_counter()
    qtok = bm25s.tokenize([v["text"] for v in data.queries.values()], stopwords=stop, stemmer=stemmer,
                          show_progress=False)
    res, _ = bm.retrieve(qtok, k=10, show_progress=False, n_threads=1)
    bm_q = (time.perf_counter() - t0) / len(data.queries) * 1000
    bm_m = score_runs({q: [ids[j] for j in res[n]] for n, q in enumerate(data.queries)}, data.qrels)

    rng = random.Random(3)
    words = [w for t in list(texts.values())[:2000] for w in t.split()]
    chat = {f"c{i}": " ".join(rng.choices(words, k=rng.randint(10, 40))) for i in range(100_000)}
    with tempfile.TemporaryDirectory() as tmp:
        fts100, fts100_build = fts5_index(chat, Path(tmp) / "k.sqlite3")
        t0 = time.perf_counter()
        fts100.insert([MemoryRecord("new", "one more chat turn", "user", None, 0.0, {})], [1])
        fts100_add = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        for q in list(data.queries.values())[:100]:
            fts100.search(q["text"], 100)
        fts100_q = (time.perf_counter() - t0) / 100 * 1000
        fts100.close()
    _, _, bm100_build = bm25s_index(chat, stop)

    print(f"{'':<8} {'nDCG@10':>8} {'R@10':>6} {'build corpus':>13} {'add 1 doc':>11} {'query ms':>9} "
          f"{'build 100k':>11} {'add 1 @100k':>12}")
    print(f"{'FTS5':<8} {fts_m['ndcg@10']:>8.4f} {fts_m['recall@10']:>6.3f} {fts_build:>12.2f}s "
          f"{fts_add:>9.1f}ms {fts_q:>9.2f} {fts100_build:>10.2f}s {fts100_add:>10.1f}ms"
          f"   (query @100k, depth 100: {fts100_q:.2f} ms)")
    print(f"{'bm25s':<8} {bm_m['ndcg@10']:>8.4f} {bm_m['recall@10']:>6.3f} {bm_build:>12.2f}s "
          f"{bm_build * 1000:>9.0f}ms {bm_q:>9.2f} {bm100_build:>10.2f}s {bm100_build * 1000:>10.0f}ms"
          "   (bm25s: adding = rebuilding)")


if __name__ == "__main__":
    main()
