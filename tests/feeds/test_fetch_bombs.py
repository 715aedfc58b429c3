"""Compression bombs in the feed and page fetcher (issue 25, HIGH): the body is decoded in bounded pieces,
one encoding layer at most, with a ratio cap, so no response can make the daemon hold more than the limit."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.feeds.decode import MAX_RATIO, RATIO_FREE_BYTES, BodyRefused, decode_body
from assistant.feeds.fetch import FeedFetcher, FetchError
from tests.feeds_server import FeedServer, Reply, serve

LIMIT = 1_000_000


def _gzip_bomb(decoded_bytes: int) -> bytes:
    """``decoded_bytes`` of zeros, gzipped in pieces (about 1000:1)."""
    out = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    piece = b"\0" * (1 << 20)
    parts = [out.compress(piece) for _ in range(decoded_bytes // len(piece))]
    return b"".join([*parts, out.flush()])


def _pieces(data: bytes, size: int = 8192) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with serve() as srv:
        yield srv


@pytest.fixture
def fetcher() -> Iterator[FeedFetcher]:
    f = FeedFetcher(timeout=10, max_bytes=LIMIT, allowed_networks=["127.0.0.0/8"])
    yield f
    f.close()


def test_stacked_gzip_from_a_server_is_refused_before_it_is_inflated(server: FeedServer, fetcher: FeedFetcher) -> None:
    twice = gzip.compress(_gzip_bomb(600 << 20))  # 600 MB of zeros in a few hundred bytes
    url = server.route("/bomb.xml", Reply(200, twice, [("Content-Type", "application/rss+xml"),
                                                        ("Content-Encoding", "gzip, gzip")]))  # fmt: skip
    tracemalloc.start()
    try:
        with pytest.raises(FetchError, match="stacked content encodings"):
            fetcher.fetch(url)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * LIMIT


def test_a_single_gzip_bomb_stops_at_the_limit_or_the_ratio_and_memory_stays_bounded(
    server: FeedServer, fetcher: FeedFetcher
) -> None:
    bomb = _gzip_bomb(600 << 20)
    url = server.route("/page.html", Reply(200, bomb, [("Content-Type", "text/html"), ("Content-Encoding", "gzip")]))
    tracemalloc.start()
    try:
        try:
            doc = fetcher.fetch(url)
        except FetchError as exc:  # refused as a bomb by the ratio cap
            assert "decompression bomb" in str(exc)
        else:  # or cut at the limit: never more
            assert len(doc.body) == LIMIT and doc.problem and "limit" in doc.problem
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * LIMIT  # the old fetcher decoded each read whole: hundreds of MB


def test_an_ordinary_gzipped_feed_still_reads_whole(server: FeedServer, fetcher: FeedFetcher) -> None:
    body = b"<?xml version='1.0'?><rss version='2.0'><channel><title>T</title>" + b"<item><title>x</title></item>" * 2000 + b"</channel></rss>"
    url = server.route("/ok.xml", Reply(200, gzip.compress(body), [("Content-Type", "application/rss+xml"),
                                                                   ("Content-Encoding", "gzip")]))  # fmt: skip
    doc = fetcher.fetch(url)
    assert doc.body == body and doc.problem is None
    assert server.requests[-1][1].get("accept-encoding") == "gzip, deflate"


def test_an_unknown_encoding_is_named_in_the_refusal(server: FeedServer, fetcher: FeedFetcher) -> None:
    url = server.route("/br.xml", Reply(200, b"\x8b\x00", [("Content-Encoding", "br")]))
    with pytest.raises(FetchError, match="'br' is not supported"):
        fetcher.fetch(url)


def test_raw_deflate_and_zlib_deflate_both_decode() -> None:
    data = b"hello feed " * 100
    raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    raw_deflate = raw.compress(data) + raw.flush()
    assert decode_body(_pieces(raw_deflate, 7), "deflate", LIMIT).body == data
    assert decode_body(_pieces(zlib.compress(data), 7), "deflate", LIMIT).body == data


def test_a_cut_or_corrupt_gzip_says_so_and_keeps_what_decoded_before_it() -> None:
    data = bytes(range(256)) * 4000
    whole = gzip.compress(data)
    cut = decode_body(_pieces(whole[: len(whole) // 2]), "gzip", LIMIT)
    assert cut.corrupt and "ended before its end" in cut.corrupt and data.startswith(cut.body)
    broken = whole[:20] + b"\xff" * 64
    assert decode_body(_pieces(broken), "gzip", LIMIT).corrupt


ENCODERS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
}


@settings(max_examples=60, deadline=None)
@given(
    layers=st.lists(st.sampled_from(["gzip", "deflate", "identity"]), max_size=3),
    unit=st.binary(min_size=1, max_size=64),
    repeats=st.integers(min_value=1, max_value=200_000),
    piece=st.integers(min_value=1, max_value=70_000),
    limit=st.integers(min_value=1, max_value=2_000_000),
)
def test_decoding_any_stack_of_encodings_is_bounded_and_exact(
    layers: list[str], unit: bytes, repeats: int, piece: int, limit: int
) -> None:
    """Property: whatever the stack, ratio and limit, the result is refused, or exactly the payload's
    first bytes up to the limit; and never more than the limit is held."""
    payload = unit * repeats
    wire = payload
    for layer in layers:
        if layer != "identity":
            wire = ENCODERS[layer](wire)
    header = ", ".join(layers) or None
    real = [layer for layer in layers if layer != "identity"]
    try:
        result = decode_body(_pieces(wire, piece), header, limit)
    except BodyRefused as exc:
        if len(real) > 1:
            assert "stacked" in str(exc)
        else:
            assert "bomb" in str(exc) and len(payload) > RATIO_FREE_BYTES
            assert len(payload) > MAX_RATIO * len(wire) / 2  # refused only when it really inflates that much
        return
    assert len(real) <= 1
    assert len(result.body) <= limit
    assert result.body == payload[:limit]
    assert result.truncated == (len(payload) > limit)


def test_the_page_fetcher_is_the_same_fetcher() -> None:
    """Pages (assistant.pages) fetch through FeedFetcher, so the same decoding guards them."""
    from assistant.pages.read import build_fetcher

    fetcher = build_fetcher(timeout=5, max_bytes=LIMIT, max_redirects=2, user_agent="t", allowed_networks=())
    try:
        assert isinstance(fetcher, FeedFetcher)
    finally:
        fetcher.close()
