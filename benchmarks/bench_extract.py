"""Main-text extraction on the article-extraction benchmark's 181 hand-labelled pages, through the daemon's
own fetch-and-extract path.

    python -m benchmarks.bench_extract [--data-dir ../shared/data/pages] [--bootstrap 200] [--json FILE]

The gzipped pages are served on 127.0.0.1 by the tests' server (as ``text/html`` without a charset, so
the encoding is found the way it is for a real page), fetched with the pages part's guarded fetcher
(127.0.0.0/8 allowed) and extracted by ``assistant.pages.read.PageReader`` with each method: trafilatura
(what the daemon uses) and readability-lxml. Each text is scored as the daemon would give it to the model:
hidden elements dropped, paragraphs cleaned by assistant.core.text.clean_text. Also scored: a fallback
from trafilatura to readability-lxml when trafilatura's text is under a share of readability's (at several
shares: the best one is chosen on these same pages, so its figure is optimistic), and, for reference, each
library alone with its defaults on the same fetched bytes (the published benchmark's setting).

Scores come from the benchmark's own scorer, ``evaluate.py`` in the data directory (imported from there,
not copied): token-shingle precision, recall and F1 per page, averaged, with bootstrap standard deviations.
Also printed: extraction time per page, and how many pages the daemon would refuse to summarize (paywall
teaser, no text) with the reason.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from assistant.core.errors import AssistantError
from assistant.pages.extract import EXTRACTORS, block_text
from assistant.pages.read import PageReader, build_fetcher
from tests.feeds_server import FeedServer, Reply, serve

FALLBACK_SHARES = (0.1, 0.3, 0.5)
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pages"


def load_scorer(data_dir: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("pages_evaluate", data_dir / "evaluate.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"no evaluate.py in {data_dir}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def route_pages(server: FeedServer, html_dir: Path, keys: Iterable[str]) -> dict[str, str]:
    """Each page at http://127.0.0.1:PORT/<sha256>, decompressed when asked for, as text/html."""

    def reply(key: str) -> Reply:
        body = gzip.decompress((html_dir / f"{key}.html.gz").read_bytes())
        return Reply(200, body, [("Content-Type", "text/html")])

    return {key: server.route(f"/{key}", lambda _h, k=key: reply(k)) for key in keys}


def library_defaults() -> dict[str, Callable[[bytes], str]]:
    """Each library alone with its defaults, on the fetched bytes (the published benchmark's setting)."""
    import lxml.html
    import trafilatura
    from readability import Document

    def readability_alone(body: bytes) -> str:
        summary = Document(body).summary(html_partial=True)
        return (
            block_text(lxml.html.fragment_fromstring(summary, create_parent="div")) if summary.strip() else ""
        )

    return {
        f"trafilatura {trafilatura.__version__} defaults (library alone)": lambda b: (
            trafilatura.extract(b) or ""
        ),
        "readability-lxml 0.9 defaults (library alone)": readability_alone,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--bootstrap", type=int, default=200, help="bootstrap samples for the ± figures")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    data_dir: Path = args.data_dir
    if not (data_dir / "ground-truth.json").is_file():
        raise SystemExit(f"no benchmark pages in {data_dir} (ground-truth.json, html/*.html.gz)")
    scorer = load_scorer(data_dir)
    truth: dict[str, dict[str, Any]] = json.loads((data_dir / "ground-truth.json").read_text())

    fetcher = build_fetcher(
        timeout=30,
        max_bytes=20_000_000,
        max_redirects=0,
        user_agent="bench",
        allowed_networks=["127.0.0.0/8"],
    )
    readers = {m: PageReader(fetcher, max_words=10**7, method=m) for m in EXTRACTORS}
    defaults = library_defaults()
    fallbacks = {f"fallback to readability under {r:g} x its text": r for r in FALLBACK_SHARES}
    predictions: dict[str, dict[str, dict[str, str]]] = {n: {} for n in [*readers, *fallbacks, *defaults]}
    seconds: dict[str, list[float]] = {n: [] for n in predictions}
    refused: dict[str, int] = {}
    with serve() as server:
        urls = route_pages(server, data_dir / "html", truth)
        for key in truth:
            doc = readers["trafilatura"].fetch(urls[key])
            for name, reader in readers.items():
                start = time.perf_counter()
                page = reader.extract(doc.url, doc)
                seconds[name].append(time.perf_counter() - start)
                predictions[name][key] = {"articleBody": page.text}
                if name == "trafilatura":
                    try:
                        reader.check(page, doc)
                    except AssistantError as exc:
                        refused[exc.code or "?"] = refused.get(exc.code or "?", 0) + 1
            tf, rd = (predictions[m][key]["articleBody"] for m in ("trafilatura", "readability"))
            for name, share in fallbacks.items():
                predictions[name][key] = {"articleBody": rd if len(tf) < share * len(rd) else tf}
                seconds[name].append(seconds["trafilatura"][-1] + seconds["readability"][-1])
            for name, run in defaults.items():
                start = time.perf_counter()
                predictions[name][key] = {"articleBody": run(doc.body)}
                seconds[name].append(time.perf_counter() - start)
    fetcher.close()

    rows: dict[str, dict[str, float]] = {}
    print(f"{len(truth)} pages, scored by {data_dir / 'evaluate.py'} ({args.bootstrap} bootstrap samples)\n")
    print(f"{'extraction':<62} {'F1':>13} {'precision':>15} {'recall':>15} {'ms/page':>8}")
    for name, prediction in predictions.items():
        m = scorer.evaluate(truth, prediction, args.bootstrap)
        label = name if "alone" in name else f"daemon path: {name}"
        ms = 1000 * statistics.mean(seconds[name])
        print(
            f"{label:<62} {m['f1']:.3f} ± {m['f1_std']:.3f}   {m['precision']:.3f} ± {m['precision_std']:.3f}"
            f"   {m['recall']:.3f} ± {m['recall_std']:.3f} {ms:8.1f}"
        )
        rows[label] = {k: m[k] for k in ("f1", "f1_std", "precision", "recall")} | {"ms_per_page": ms}
    print(f"\npages the daemon would not summarize: {refused or 'none'}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "refused": refused}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
