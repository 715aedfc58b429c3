"""Fetching from a real HTTP server on 127.0.0.1: errors, slow servers, bad bodies, size cap, conditional GET.

Each case goes through FeedService.refresh (fetch -> parse -> store) and checks what is recorded on the feed.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assistant.core.errors import BadRequest
from assistant.feeds.fetch import FeedFetcher, FetchError, check_feed_url
from assistant.feeds.service import FeedService
from assistant.feeds.store import FeedStore
from tests.fakes import FixedClock
from tests.feeds_server import FeedServer, Handler, Reply, serve


def rss(n: int, *, title: str = "Feed", pad: int = 0) -> bytes:
    items = "".join(
        f"<item><title>Story {i}</title><link>http://example.com/{i}</link><guid>g{i}</guid>"
        f"<description>{'x' * pad}</description></item>"
        for i in range(n)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>{items}</channel></rss>'.encode()


RSS_TYPE = [("Content-Type", "application/rss+xml")]


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with serve() as srv:
        yield srv


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at teardown: lets a deliberately stuck handler finish."""
    event = threading.Event()
    yield event
    event.set()


def make_service(tmp_path: Path, *, timeout: float = 5.0, max_bytes: int = 1_000_000) -> FeedService:
    fetcher = FeedFetcher(timeout=timeout, max_bytes=max_bytes, max_redirects=3, allowed_networks=["127.0.0.0/8"])
    return FeedService(FeedStore(tmp_path / "feeds.sqlite3"), fetcher, FixedClock(), refresh_workers=2)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[FeedService]:
    svc = make_service(tmp_path)
    yield svc
    svc.close()


def test_ok_feed_is_stored(server: FeedServer, service: FeedService) -> None:
    url = server.route("/ok.xml", Reply(200, rss(3, title="Good"), RSS_TYPE))
    feed = service.subscribe(url)
    result = service.refresh(feed.id)
    assert (result.ok, result.new_entries, result.entries_seen, result.error) == (True, 3, 3, None)
    stored = service.get(feed.id)
    assert (stored.title, stored.entry_count, stored.last_error, stored.error_count) == ("Good", 3, None, 0)
    assert service.refresh(feed.id).new_entries == 0  # same entries again: nothing new


@pytest.mark.parametrize("status", [404, 410, 500, 503])
def test_http_error_status_is_recorded_and_entries_kept(server: FeedServer, service: FeedService,
                                                        status: int) -> None:
    replies = iter([Reply(200, rss(2), RSS_TYPE), Reply(status, b"<html>oops</html>")])
    url = server.route("/flaky.xml", lambda _h: next(replies))
    feed = service.subscribe(url)
    assert service.refresh(feed.id).ok
    result = service.refresh(feed.id)
    assert not result.ok and result.http_status == status
    assert result.error is not None and result.error.startswith(f"HTTP {status}")
    stored = service.get(feed.id)
    assert stored.entry_count == 2  # earlier entries survive a failing server
    assert stored.last_error == result.error and stored.error_count == 1


def test_slow_server_times_out(server: FeedServer, tmp_path: Path, release: threading.Event) -> None:
    url = server.route("/slow.xml", Reply(200, rss(1), RSS_TYPE, hold=release))
    svc = make_service(tmp_path, timeout=0.3)
    feed = svc.subscribe(url)
    result = svc.refresh(feed.id)
    svc.close()
    assert not result.ok
    assert result.error is not None and result.error.startswith("timed out after 0.3s")


def test_trickling_server_hits_the_whole_fetch_deadline(server: FeedServer, tmp_path: Path,
                                                        release: threading.Event) -> None:
    body = rss(50, pad=200)

    def trickle(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/rss+xml")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        for i in range(0, len(body), 512):  # each piece arrives within the read timeout, the whole never
            h.wfile.write(body[i : i + 512])
            h.wfile.flush()
            if release.wait(0.05):
                return

    url = server.route("/trickle.xml", trickle)
    svc = make_service(tmp_path, timeout=0.4)
    result = svc.refresh(svc.subscribe(url).id)
    svc.close()
    assert not result.ok and result.error is not None and "timed out" in result.error


def test_html_instead_of_xml(server: FeedServer, service: FeedService) -> None:
    page = b"<!DOCTYPE html><html><head><title>Home</title></head><body><h1>Welcome</h1></body></html>"
    url = server.route("/page", Reply(200, page, [("Content-Type", "text/html; charset=utf-8")]))
    feed = service.subscribe(url)
    result = service.refresh(feed.id)
    assert not result.ok and result.entries_seen == 0
    assert service.get(feed.id).last_error == "not a feed: the server sent an HTML page (text/html)"


def test_truncated_body_keeps_complete_entries_and_no_validators(server: FeedServer,
                                                                 service: FeedService) -> None:
    body = rss(10)
    cut = body[: body.index(b"<item><title>Story 6")] + b"<item><title>Sto"
    headers = [*RSS_TYPE, ("ETag", '"v1"')]
    url = server.route("/cut.xml", Reply(200, cut, headers, content_length=len(body)))
    feed = service.subscribe(url)
    result = service.refresh(feed.id)
    assert result.ok and result.new_entries >= 6
    assert result.error is not None and "download truncated" in result.error
    stored = service.get(feed.id)
    assert stored.etag is None  # a partial body must not be confirmed by a later 304
    assert "download truncated" in (stored.last_error or "")
    titles = {e.title for e in service.entries(feed.id, 50)}
    assert {f"Story {i}" for i in range(6)} <= titles


def test_wrong_declared_encoding(server: FeedServer, service: FeedService) -> None:
    doc = '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Caf\xe9</title>' \
        '<item><title>Cr\xe8me br\xfbl\xe9e</title><link>http://example.com/c</link></item></channel></rss>'
    url = server.route("/latin.xml", Reply(200, doc.encode("latin-1"),
                                           [("Content-Type", "application/rss+xml; charset=utf-8")]))
    feed = service.subscribe(url)
    result = service.refresh(feed.id)
    assert result.ok and result.new_entries == 1
    assert [e.title for e in service.entries(feed.id)] == ["Cr\xe8me br\xfbl\xe9e"]
    stored = service.get(feed.id)
    assert stored.title == "Caf\xe9"
    assert "declared as utf-8" in (stored.last_error or "") and stored.error_count == 0  # a warning


def test_oversized_body_is_cut_at_max_bytes(server: FeedServer, tmp_path: Path) -> None:
    body = rss(400, pad=100)  # ~70 KB
    url = server.route("/big.xml", Reply(200, body, RSS_TYPE))
    svc = make_service(tmp_path, max_bytes=16_384)
    feed = svc.subscribe(url)
    result = svc.refresh(feed.id)
    svc.close()
    assert result.ok and 0 < result.new_entries < 400  # the start of the feed is kept
    assert result.error is not None and "over the 16384-byte limit" in result.error


def test_gzip_bomb_is_cut_on_decoded_size(server: FeedServer, tmp_path: Path) -> None:
    inflated = rss(2) + b"<!--" + b" " * 20_000_000 + b"-->"
    url = server.route("/bomb.xml", Reply(200, gzip.compress(inflated, 9), [*RSS_TYPE, ("Content-Encoding", "gzip")]))
    fetcher = FeedFetcher(timeout=5, max_bytes=65_536, allowed_networks=["127.0.0.0/8"])
    doc = fetcher.fetch(url)
    fetcher.close()
    assert len(doc.body) == 65_536 and doc.problem is not None and "limit" in doc.problem


def test_etag_and_last_modified_give_304(server: FeedServer, service: FeedService) -> None:
    seen: list[dict[str, str]] = []

    def conditional(h: Handler) -> Reply:
        seen.append({k.lower(): v for k, v in h.headers.items()})
        if h.headers.get("If-None-Match") == '"v1"':
            return Reply(304)
        return Reply(200, rss(2), [*RSS_TYPE, ("ETag", '"v1"')])

    def by_date(h: Handler) -> Reply:
        if h.headers.get("If-Modified-Since") == "Mon, 03 Apr 2023 01:02:03 GMT":
            return Reply(304)
        return Reply(200, rss(3), [*RSS_TYPE, ("Last-Modified", "Mon, 03 Apr 2023 01:02:03 GMT")])

    etag_feed = service.subscribe(server.route("/etag.xml", conditional))
    date_feed = service.subscribe(server.route("/date.xml", by_date))
    first = {r.feed_id: r for r in service.refresh_all()}
    assert first[etag_feed.id].new_entries == 2 and first[date_feed.id].new_entries == 3
    assert service.get(etag_feed.id).etag == '"v1"'
    assert service.get(date_feed.id).last_modified == "Mon, 03 Apr 2023 01:02:03 GMT"
    second = {r.feed_id: r for r in service.refresh_all()}
    assert all(r.ok and r.not_modified and r.http_status == 304 for r in second.values())
    assert "if-none-match" not in seen[0] and seen[1]["if-none-match"] == '"v1"'
    assert service.get(etag_feed.id).entry_count == 2 and service.get(date_feed.id).entry_count == 3


def test_redirects_are_followed_and_limited(server: FeedServer, service: FeedService) -> None:
    server.route("/final.xml", Reply(200, rss(1), RSS_TYPE))
    moved = service.subscribe(server.route("/moved", Reply(301, b"", [("Location", "/final.xml")])))
    assert service.refresh(moved.id).new_entries == 1
    loop = service.subscribe(server.route("/loop", Reply(302, b"", [("Location", "/loop")])))
    result = service.refresh(loop.id)
    assert not result.ok and result.error == "too many redirects"
    ftp = service.subscribe(server.route("/to-ftp", Reply(302, b"", [("Location", "ftp://127.0.0.1/x")])))
    result = service.refresh(ftp.id)
    assert not result.ok and result.error is not None and "unsupported" in result.error


def test_connection_refused_is_a_result_not_an_exception(service: FeedService) -> None:
    from tests.daemon import free_port

    feed = service.subscribe(f"http://127.0.0.1:{free_port()}/feed.xml")
    [result] = service.refresh_all()
    assert not result.ok and result.error and "ConnectError" in result.error
    assert service.get(feed.id).error_count == 1


@pytest.mark.parametrize(
    "url",
    ["", "ftp://example.com/feed", "file:///etc/passwd", "javascript:alert(1)", "http://", "example.com/feed",
     "http://exa mple.com/", "http://example.com:99999/"],
)
def test_only_http_urls_are_accepted(url: str) -> None:
    with pytest.raises(BadRequest):
        check_feed_url(url)


def test_fetcher_raises_fetch_error_on_status() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text="no")

    fetcher = FeedFetcher(timeout=1, max_bytes=2048, transport=httpx.MockTransport(handler))
    with pytest.raises(FetchError) as info:
        fetcher.fetch("http://127.0.0.1/x")
    assert info.value.status == 500
