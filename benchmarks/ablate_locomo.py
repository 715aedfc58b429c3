"""What each part of conversation search buys on LoCoMo (BEIR format, one document per turn), on the
conversations it was tuned on and on the ones it was not:

    .venv/bin/python benchmarks/ablate_locomo.py ../shared/data/locomo-dev --index /tmp/locomo-index [--grid]

Split rule (fixed before tuning): the conversation ids sorted; the first three tune, the rest are held out
(locomo-dev: tune conv-26, conv-30, conv-41; held out conv-42, conv-43). Every search is within the
query's conversation, as `assistant eval retrieval --group-by conversation_id` does.

The index (built once through `memory.eval.ingest`, the real add path) gives the dense rankings. BM25
variants are rebuilt in temp dirs from the same turns with each context rule (no embedding needed), and
fused with the dense ranking as `MemoryService.search` does. `--grid` also prints the context-weight x
turn-dense-weight grid ranked on the tuning conversations (the defaults are its best).
"""

from __future__ import annotations

import argparse
import collections
import itertools
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from assistant.core.clock import SystemClock
from memory.context import turn_context
from memory.eval import Dataset, as_memory, ingest, load_beir, query_category, score_runs
from memory.hybrid import fuse
from memory.keyword import CONTEXT_WEIGHT, MAX_DF, MIN_DF_ROWS, Filters, KeywordIndex, MemoryRecord
from memory.opening import open_memory
from memory.service import SearchConfig

Ranking = list[tuple[str, float]]


def split_conversations(data: Dataset, tune: int = 3) -> tuple[set[str], set[str]]:
    convs = sorted({str(q["metadata"]["conversation_id"]) for q in data.queries.values()})
    return set(convs[:tune]), set(convs[tune:])


def keyword_variant(data: Dataset, tmp: Path, turns: int, dates: bool, relative: bool) -> KeywordIndex:
    """FTS5 over the turns, each with the context this rule gives (as MemoryService._turn_contexts does)."""
    idx = KeywordIndex(tmp / f"kw-{len(list(tmp.iterdir()))}.sqlite3")
    before: dict[str, list[str]] = collections.defaultdict(list)
    records = []
    for doc_id, doc in data.corpus.items():
        m = as_memory(doc_id, doc)
        if m is None or m.conversation_id is None:
            continue
        said = m.created_at.timestamp() if m.created_at else 0.0
        previous = before[m.conversation_id][-turns:] if turns else []
        # relative=False: resolving is skipped by giving no text to resolve (the day itself still counts)
        context = turn_context(previous, m.text if relative else "", said, dates=dates)
        if not turns and not dates:
            context = ""
        before[m.conversation_id].append(m.text)
        records.append(MemoryRecord(doc_id, m.text, "note", m.conversation_id, said, {}, context))
    idx.insert(records, [1] * len(records))
    return idx


def scores(runs: Mapping[str, Sequence[str]], data: Dataset, convs: set[str]) -> dict[str, float]:
    qrels = {q: r for q, r in data.qrels.items() if data.queries[q]["metadata"]["conversation_id"] in convs}
    return score_runs(runs, qrels)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--split", default="dev")
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--grid", action="store_true")
    args = ap.parse_args()
    data = load_beir(args.folder, args.split)
    tune, held = split_conversations(data)
    print(f"tune on {', '.join(sorted(tune))}; held out {', '.join(sorted(held))}")
    fresh = not (args.index / "keyword.sqlite3").exists()
    service = open_memory(args.index, SystemClock(), recency=False)
    if fresh:
        ingest(service, data.corpus)
    recs, _ = service.list(limit=10**7)
    doc_of = {r.id: str(r.metadata["doc_id"]) for r in recs}
    conv_of = {q: str(v["metadata"]["conversation_id"]) for q, v in data.queries.items()}
    dense: dict[str, Ranking] = {}
    for q, v in data.queries.items():
        where = Filters(where=(("conversation_id", conv_of[q]),))
        got = service.rankings(v["text"], where, "dense", args.depth)["dense"]
        dense[q] = [(doc_of[i], s) for i, s in got]
    service.close()

    rows: list[tuple[str, dict[str, float], dict[str, float]]] = []

    def row(name: str, run: Callable[[str], list[str]]) -> dict[str, list[str]]:
        runs = {q: run(q)[:10] for q in data.queries}
        rows.append((name, scores(runs, data, tune), scores(runs, data, held)))
        return runs

    def ranked(kw: Mapping[str, Ranking]) -> Callable[[str], list[str]]:
        return lambda q: [d for d, _ in kw[q]]

    def hybrid(kw: Mapping[str, Ranking], w_dense: float) -> Callable[[str], list[str]]:
        return lambda q: [f.id for f in fuse({"dense": dense[q], "keyword": kw[q]},
                                             {"dense": w_dense, "keyword": 1.0}, "zscore")]

    with tempfile.TemporaryDirectory() as tmp:
        kws: dict[tuple[int, bool, bool, float, float | None, int], dict[str, Ranking]] = {}

        def keyword(turns: int, dates: bool, relative: bool, weight: float,
                    max_df: float | None = None, min_rows: int = 0) -> dict[str, Ranking]:
            key = (turns, dates, relative, weight, max_df, min_rows)
            if key not in kws:
                idx = keyword_variant(data, Path(tmp), turns, dates, relative)
                kws[key] = {q: idx.search(v["text"], args.depth, Filters(conversation_id=conv_of[q]),
                                          context_weight=weight, max_df=max_df, min_df_rows=min_rows)
                           for q, v in data.queries.items()}
                idx.close()
            return kws[key]

        w_ctx, w_turn = CONTEXT_WEIGHT, SearchConfig().turn_dense_weight
        base_kw = keyword(0, False, False, w_ctx)
        row("dense (the turn alone)", ranked(dense))
        row("BM25 (the turn alone)", ranked(base_kw))
        row("hybrid z-score 1:1 (before)", hybrid(base_kw, 1.0))
        row("BM25 + 1 turn before", ranked(keyword(1, False, False, w_ctx)))
        row("BM25 + 2 turns before", ranked(keyword(2, False, False, w_ctx)))
        row("BM25 + 3 turns before", ranked(keyword(3, False, False, w_ctx)))
        row("BM25 + 2 before + day said", ranked(keyword(2, True, False, w_ctx)))
        used_kw = keyword(2, True, True, w_ctx)
        row("BM25 + 2 before + day + relative dates [used]", ranked(used_kw))
        row("hybrid 1:1 over that BM25", hybrid(used_kw, 1.0))
        row("hybrid, turn dense weight 0.25", hybrid(used_kw, 0.25))
        row(f"hybrid, turn dense weight {w_turn}, every term", hybrid(used_kw, w_turn))
        # Common terms left out whatever their count (min_df_rows 0): what it costs where it applies, at
        # 100k memories; with the default MIN_DF_ROWS nothing is left out at this size.
        for max_df in (0.5, 0.3, 0.2, 0.1, 0.05):
            pruned = keyword(2, True, True, w_ctx, max_df)
            row(f"  BM25, terms in <= {max_df:.0%} of turns", ranked(pruned))
            row(f"  hybrid, terms in <= {max_df:.0%} of turns", hybrid(pruned, w_turn))
        default_kw = keyword(2, True, True, w_ctx, MAX_DF, MIN_DF_ROWS)
        final = row(f"hybrid, > {MAX_DF:.0%} and > {MIN_DF_ROWS} turns left out [used]", hybrid(default_kw, w_turn))
        if args.grid:
            grid = []
            for wc, wd in itertools.product([0.2, 0.35, 0.5, 0.75], [0.15, 0.25, 0.35, 0.5, 0.75, 1.0]):
                kw = keyword(2, True, True, wc)
                runs = {q: hybrid(kw, wd)(q)[:10] for q in data.queries}
                grid.append((wc, wd, scores(runs, data, tune), scores(runs, data, held)))
            print(f"\n{'context w':>9} {'dense w':>8} {'tune nDCG':>10} {'held nDCG':>10}")
            for wc, wd, t, h in sorted(grid, key=lambda g: -g[2]["ndcg@10"]):
                print(f"{wc:>9} {wd:>8} {t['ndcg@10']:>10.4f} {h['ndcg@10']:>10.4f}")

    print(f"\n{'variant':<48} {'tune nDCG':>9} {'R@10':>6} {'held nDCG':>9} {'R@10':>6}")
    for name, t, h in rows:
        print(f"{name:<48} {t['ndcg@10']:>9.4f} {t['recall@10']:>6.3f} {h['ndcg@10']:>9.4f} {h['recall@10']:>6.3f}")
    print("\nfinal hybrid by category (nDCG@10 / R@10):")
    for part, convs in (("tune", tune), ("held", held)):
        by: dict[str, list[str]] = collections.defaultdict(list)
        for q in data.queries:
            if conv_of[q] in convs:
                by[query_category(data.queries[q]) or "-"].append(q)
        for category, qs in sorted(by.items()):
            m = score_runs(final, {q: data.qrels[q] for q in qs})
            print(f"  {part} {category:<12} {len(qs):>4} {m['ndcg@10']:.4f} / {m['recall@10']:.4f}")


if __name__ == "__main__":
    main()
