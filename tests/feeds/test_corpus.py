"""Every file in ../shared/data/feeds (~2,300 feeds, well-formed and broken) through the real path: served by
an HTTP server on 127.0.0.1, fetched with FeedFetcher, parsed with parse_document, and (second test) stored
by FeedService.refresh_all. For the feedparser suite, what we extract is checked against its `Expect:` lines
where they make a simple claim about an entry's title or link or the feed's title.

Figures are printed (run with -s): `.venv/bin/python -m pytest tests/feeds/test_corpus.py -s -q`
"""

from __future__ import annotations

import ast
import io
import re
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest

from assistant.core.text import FEED_TITLE_MAX, LINK_MAX, TITLE_MAX, plain
from assistant.feeds.fetch import FeedFetcher, FetchedDocument, FetchError
from assistant.feeds.models import ParsedEntry, ParsedFeed
from assistant.feeds.parse import _xml_entry, parse_document
from assistant.feeds.service import FeedService
from assistant.feeds.store import FeedStore
from tests.conftest import shared_data
from tests.fakes import FixedClock
from tests.feeds_server import FeedServer, serve

pytestmark = pytest.mark.slow

FEEDPARSER_ORIGIN = "http://127.0.0.1:8097"  # where feedparser's own harness serves its tests
WORKERS = 4


@dataclass
class Outcome:
    path: Path
    doc: FetchedDocument | None = None
    parsed: ParsedFeed | None = None
    fetch_error: str | None = None
    crash: str | None = None


@dataclass
class Corpus:
    root: Path
    server: FeedServer
    files: list[Path]
    outcomes: dict[Path, Outcome]
    seconds: float


def corpus_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def corpus() -> Iterator[Corpus]:
    root = shared_data("feeds")
    files = corpus_files(root)
    with serve(root) as server:
        fetcher = FeedFetcher(timeout=30, max_bytes=5_000_000, max_connections=WORKERS, allowed_networks=["127.0.0.0/8"])

        def one(path: Path) -> Outcome:
            outcome = Outcome(path)
            try:
                outcome.doc = fetcher.fetch(server.url(path.relative_to(root).as_posix()))
                outcome.parsed = parse_document(outcome.doc.body, outcome.doc.url, outcome.doc.headers)
            except FetchError as exc:
                outcome.fetch_error = exc.message
            except Exception as exc:  # noqa: BLE001 - a crash is what this test looks for
                outcome.crash = f"{type(exc).__name__}: {exc}"
            return outcome

        started = time.monotonic()
        with ThreadPoolExecutor(WORKERS) as pool:
            outcomes = {o.path: o for o in pool.map(one, files)}
        seconds = time.monotonic() - started
        fetcher.close()
        yield Corpus(root, server, files, outcomes, seconds)


def test_every_file_fetches_and_parses_without_a_crash(corpus: Corpus) -> None:
    outcomes = list(corpus.outcomes.values())
    assert len(outcomes) == len(corpus.files) > 2000
    crashes = [(o.path, o.crash) for o in outcomes if o.crash]
    assert crashes == []
    fetch_errors = [(o.path, o.fetch_error) for o in outcomes if o.fetch_error]
    assert fetch_errors == []  # every file is served with 200 by our server
    parsed = [o.parsed for o in outcomes if o.parsed]
    for feed in parsed:  # stored text obeys the caps, links are http(s) only
        assert len(feed.title) <= FEED_TITLE_MAX
        for entry in feed.entries:
            assert len(entry.title) <= TITLE_MAX and len(entry.link) <= LINK_MAX
            assert entry.link == "" or entry.link.startswith(("http://", "https://"))
            assert entry.published is None or entry.published.tzinfo is not None
    with_entries = sum(1 for f in parsed if f.entries)
    problems = Counter((f.problem or "ok").split(":")[0] for f in parsed)
    print(
        f"\ncorpus: {len(outcomes)} files in {corpus.seconds:.1f}s ({WORKERS} threads), "
        f"{sum(len(f.entries) for f in parsed)} entries, {with_entries} files with entries; "
        f"problems recorded: {dict(problems.most_common())}"
    )
    # Real-world feeds (rss-parser, fastfeedparser, feed-rs): entries, or a problem recorded, or a valid
    # document that really has none.
    real = [o for o in outcomes if o.parsed and o.path.suffix in (".rss", ".atom", ".xml")
            and "/feedparser/" not in str(o.path)]
    empty = [(o.path.name, o.parsed.problem) for o in real if o.parsed and not o.parsed.entries]
    assert all(o.parsed and (o.parsed.entries or o.parsed.problem or o.parsed.format) for o in real)
    print(f"real-world feeds: {len(real)}, {len(real) - len(empty)} with entries; without: {empty}")
    assert len(empty) <= len(real) // 10


# -- feedparser's Expect: lines -------------------------------------------------------------------------------

_EXPECT_RE = re.compile(r"^\s*Expect:\s*(.+?)\s*$", re.MULTILINE)


def expect_expression(path: Path) -> str | None:
    head = path.read_bytes()[:4096].decode("utf-8", "replace")
    end = head.find("-->")
    match = _EXPECT_RE.search(head[: end if end >= 0 else len(head)])
    return match.group(1) if match else None


def _string(node: ast.AST) -> str | None:
    """A string literal, or a '+' of string literals; None for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _string(node.left), _string(node.right)
        return left + right if left is not None and right is not None else None
    return None


def _field(node: ast.AST) -> tuple[str, int | None, str] | None:
    """entries[N]['title'|'link'] -> ("entry", N, name); feed['title'] -> ("feed", None, "title")."""
    if not (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant)):
        return None
    name = node.slice.value
    inner = node.value
    if name in ("title", "link") and isinstance(inner, ast.Subscript) and isinstance(inner.value, ast.Name) \
            and inner.value.id == "entries" and isinstance(inner.slice, ast.Constant) \
            and isinstance(inner.slice.value, int):
        return ("entry", inner.slice.value, name)
    if name == "title" and isinstance(inner, ast.Name) and inner.id == "feed":
        return ("feed", None, name)
    return None


def simple_claims(expression: str) -> list[tuple[tuple[str, int | None, str], str]]:
    """The `field == 'literal'` claims an Expect expression makes unconditionally (top level or joined by
    `and`); anything under `not`/`or`/a call, or compared to something computed, is left out."""
    try:
        tree = ast.parse(expression, mode="eval").body
    except SyntaxError:
        return []
    parts = tree.values if isinstance(tree, ast.BoolOp) and isinstance(tree.op, ast.And) else [tree]
    claims = []
    for part in parts:
        if not isinstance(part, ast.Compare) or not all(isinstance(op, ast.Eq) for op in part.ops):
            continue
        operands = [part.left, *part.comparators]
        literals = [s for s in map(_string, operands) if s is not None]
        fields = [f for f in map(_field, operands) if f is not None]
        if len(literals) == 1 and len(fields) == len(operands) - 1 and fields:
            claims.extend((f, literals[0]) for f in fields)
    return claims


def _feedparser_view(outcome: Outcome) -> tuple[Any, str]:
    """feedparser's own result for the same bytes and headers, and the base URL links resolve against."""
    import feedparser

    assert outcome.doc is not None
    headers = outcome.doc.headers
    base = urljoin(outcome.doc.url, headers.get("content-location", "")) or outcome.doc.url
    passed = {k: v for k, v in headers.items() if k in ("content-type", "content-language")}
    passed["content-location"] = base
    return feedparser.parse(io.BytesIO(outcome.doc.body), response_headers=passed), base


def _title_type(outcome: Outcome, kind: str, index: int | None) -> str | None:
    """The declared type of the title (text/plain or text/html), as feedparser read it."""
    result, _ = _feedparser_view(outcome)
    holder = result.feed if kind == "feed" else result.entries[index] if index < len(result.entries) else {}
    return (holder.get("title_detail") or {}).get("type")


def _entry_we_keep(outcome: Outcome, index: int) -> tuple[str, ParsedEntry | None]:
    """For document entry ``index``: ("kept", entry), ("merged", the earlier entry with the same identity)
    or ("dropped", None) when it has no title, link or summary."""
    assert outcome.parsed is not None
    for entry in outcome.parsed.entries:
        if entry.position == index:
            return "kept", entry
    result, base = _feedparser_view(outcome)
    if index >= len(result.entries):
        return "dropped", None
    mine = _xml_entry(result.entries[index], base, index)
    if mine is None:
        return "dropped", None
    same = [e for e in outcome.parsed.entries if e.identity == mine.identity]
    return ("merged", same[0]) if same else ("dropped", None)


def test_feedparser_expectations_on_titles_and_links(corpus: Corpus) -> None:
    suite = corpus.root / "feedparser" / "tests"
    checked = agreed = 0
    by_field: Counter[str] = Counter()
    how_counts: Counter[str] = Counter()
    disagreements = []
    for path in sorted(p for p in corpus.files if suite in p.parents):
        expression = expect_expression(path)
        if not expression:
            continue
        outcome = corpus.outcomes[path]
        assert outcome.parsed is not None
        for (kind, index, name), expected in simple_claims(expression):
            checked += 1
            by_field[f"{kind}.{name}"] += 1
            if name == "link":
                expected_value = expected.replace(FEEDPARSER_ORIGIN, corpus.server.base)
            else:  # we store titles as plain text: convert the claim the same way
                limit = FEED_TITLE_MAX if kind == "feed" else TITLE_MAX
                expected_value = plain(expected, _title_type(outcome, kind, index), limit)
            if kind == "feed":
                got: str | None = outcome.parsed.title
            else:
                assert index is not None
                how, entry = _entry_we_keep(outcome, index)
                how_counts[how] += 1
                # An entry with no text and no link is not stored: that agrees with a claim of an empty title.
                got = getattr(entry, name) if entry else ""
            if got == expected_value:
                agreed += 1
            else:
                disagreements.append((path.relative_to(suite).as_posix(), name, expected_value, got))
    print(f"\nfeedparser Expect claims checked: {checked} ({dict(by_field)}), agreed: {agreed}; "
          f"entry claims answered by: {dict(how_counts)}")
    for d in disagreements:
        print("  disagrees:", d)
    assert checked > 300
    assert disagreements == []


def test_claim_extraction_is_conservative() -> None:
    assert simple_claims("not bozo and entries[0]['title'] == u'A'") == [(("entry", 0, "title"), "A")]
    assert simple_claims("entries[0]['link'] == entries[1]['link'] == 'x'") == [
        (("entry", 0, "link"), "x"), (("entry", 1, "link"), "x")]
    assert simple_claims("feed['title'] == 'a' + 'b'") == [(("feed", None, "title"), "ab")]
    assert simple_claims("not entries[0]['title'] == 'x'") == []
    assert simple_claims("entries[0]['title'] == 'x' or bozo") == []
    assert simple_claims("entries[0]['title_detail']['value'] == 'x'") == []
    assert simple_claims("len(entries[0]['title']) == 3") == []


# -- fastfeedparser's expected output ------------------------------------------------------------------------


def test_fastfeedparser_expected_titles_and_links(corpus: Corpus) -> None:
    """fastfeedparser ships the parse it expects (feed.xml -> feed.json): our titles and links agree."""
    import json

    suite = corpus.root / "fastfeedparser" / "tests" / "integration"
    checked = agreed = 0
    disagreements = []
    for path in sorted(suite.glob("*.xml")):
        expected = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        parsed = corpus.outcomes[path].parsed
        assert parsed is not None
        by_position = {e.position: e for e in parsed.entries}
        for index, entry in enumerate(expected["entries"]):
            for name in ("title", "link"):
                if not isinstance(entry.get(name), str):
                    continue
                want = plain(entry[name], "text/html", TITLE_MAX) if name == "title" else entry[name]
                got = getattr(by_position[index], name) if index in by_position else None
                checked += 1
                if got == want:
                    agreed += 1
                else:
                    disagreements.append((path.name, index, name, want, got))
    print(f"\nfastfeedparser expected titles/links checked: {checked}, agreed: {agreed}")
    assert checked > 300
    assert disagreements == []


# -- the same corpus through the service (fetch -> parse -> SQLite) --------------------------------------------


def test_refresh_all_over_the_whole_corpus_never_raises(corpus: Corpus, tmp_path: Path) -> None:
    fetcher = FeedFetcher(timeout=30, max_bytes=5_000_000, max_connections=WORKERS, allowed_networks=["127.0.0.0/8"])
    service = FeedService(FeedStore(tmp_path / "feeds.sqlite3"), fetcher, FixedClock(), refresh_workers=WORKERS)
    try:
        for path in corpus.files:
            service.subscribe(corpus.server.url(path.relative_to(corpus.root).as_posix()))
        started = time.monotonic()
        results = service.refresh_all()
        seconds = time.monotonic() - started
        assert len(results) == len(corpus.files)
        feeds = {f.url: f for f in service.list()}
        assert all(f.last_fetched is not None for f in feeds.values())
        stored = sum(f.entry_count for f in feeds.values())
        for result in results:
            assert "internal error" not in (result.error or ""), result
            feed = feeds[result.url]
            if result.new_entries:
                assert feed.entry_count == result.new_entries
            if not result.ok:
                assert feed.last_error, result  # every failure is recorded on the feed
        latest = service.latest_entries(20)
        assert len(latest) == 20
        stamps = [e.published for e in latest if e.published]
        assert stamps == sorted(stamps, reverse=True)
        print(f"\nrefresh_all: {len(results)} feeds in {seconds:.1f}s, {stored} entries stored, "
              f"{sum(not r.ok for r in results)} feeds with nothing usable (problem recorded)")
    finally:
        service.close()
