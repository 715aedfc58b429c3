"""FeedService contract (what skills code against), the SQLite store, the /api/feeds routes and the CLI."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from assistant.core.errors import BadRequest, NotFound
from assistant.feeds import FeedEntry, FeedService
from assistant.feeds.fetch import FeedFetcher
from assistant.feeds.store import FeedStore
from tests.fakes import FixedClock
from tests.feeds_server import FeedServer, Reply, serve


def rss(items: list[tuple[str, str | None]], title: str = "Feed") -> bytes:
    """items: (title, RFC 822 date or None)"""
    body = "".join(
        f"<item><title>{t}</title><link>http://example.com/{t.replace(' ', '-')}</link>"
        + (f"<pubDate>{d}</pubDate>" if d else "")
        + "</item>"
        for t, d in items
    )
    return f'<rss version="2.0"><channel><title>{title}</title>{body}</channel></rss>'.encode()


class Documents:
    """What the fake network serves: url -> bytes (or an exception to raise)."""

    def __init__(self) -> None:
        self.by_url: dict[str, bytes | Exception] = {}

    def handler(self, request: httpx.Request) -> httpx.Response:
        doc = self.by_url.get(str(request.url))
        if doc is None:
            return httpx.Response(404)
        if isinstance(doc, Exception):
            raise doc
        return httpx.Response(200, content=doc, headers={"Content-Type": "application/rss+xml"})


@pytest.fixture
def docs() -> Documents:
    return Documents()


def make(tmp_path: Path, docs: Documents, clock: FixedClock, **kwargs: int) -> FeedService:
    fetcher = FeedFetcher(timeout=5, max_bytes=1_000_000, transport=httpx.MockTransport(docs.handler))
    return FeedService(FeedStore(tmp_path / "feeds.sqlite3"), fetcher, clock, **kwargs)


@pytest.fixture
def feeds(tmp_path: Path, docs: Documents, clock: FixedClock) -> Iterator[FeedService]:
    svc = make(tmp_path, docs, clock)
    yield svc
    svc.close()


def test_subscribe_list_unsubscribe(feeds: FeedService) -> None:
    a = feeds.subscribe("https://a.example/feed.xml", "My A")
    b = feeds.subscribe(" http://b.example/rss ")
    assert (a.id, a.title, a.entry_count, a.last_fetched) == (1, "My A", 0, None)
    assert b.url == "http://b.example/rss" and b.title == "http://b.example/rss"  # no title until fetched
    assert feeds.subscribe("https://a.example/feed.xml").id == a.id  # same URL: same feed
    assert [f.id for f in feeds.list()] == [a.id, b.id]
    feeds.unsubscribe(a.id)
    assert [f.id for f in feeds.list()] == [b.id]
    with pytest.raises(NotFound):
        feeds.unsubscribe(a.id)
    with pytest.raises(NotFound):
        feeds.refresh(999)
    with pytest.raises(BadRequest):
        feeds.subscribe("file:///etc/passwd")


def test_latest_entries_newest_first_across_feeds(feeds: FeedService, docs: Documents) -> None:
    docs.by_url["http://a.example/f"] = rss([("A new", "Wed, 14 Jan 2026 10:00:00 GMT"),
                                             ("A old", "Mon, 12 Jan 2026 10:00:00 GMT")], "Feed A")
    docs.by_url["http://b.example/f"] = rss([("B mid", "Tue, 13 Jan 2026 10:00:00 GMT"),
                                             ("B future", "Fri, 01 Jan 2100 00:00:00 GMT")], "Feed B")
    a = feeds.subscribe("http://a.example/f")
    b = feeds.subscribe("http://b.example/f")
    results = feeds.refresh_all()
    assert sorted((r.feed_id, r.new_entries) for r in results) == [(a.id, 2), (b.id, 2)]
    latest = feeds.latest_entries(10)
    # A date far in the future is not trusted for ordering: that entry sorts by when it was first seen (now).
    assert [e.title for e in latest] == ["B future", "A new", "B mid", "A old"]
    top = latest[1]
    assert isinstance(top, FeedEntry)
    assert (top.feed_id, top.feed_title, top.link) == (a.id, "Feed A", "http://example.com/A-new")
    assert top.published == datetime(2026, 1, 14, 10, tzinfo=UTC)
    assert [e.title for e in feeds.latest_entries(2)] == ["B future", "A new"]
    with pytest.raises(BadRequest):
        feeds.latest_entries(-1)


def test_undated_entries_keep_document_order(feeds: FeedService, docs: Documents, clock: FixedClock) -> None:
    docs.by_url["http://u.example/f"] = rss([("first", None), ("second", None), ("third", None)])
    feed = feeds.subscribe("http://u.example/f")
    feeds.refresh(feed.id)
    assert [e.title for e in feeds.entries(feed.id)] == ["first", "second", "third"]
    clock.advance(hours=1)
    docs.by_url["http://u.example/f"] = rss([("zeroth", None), ("first", None), ("second", None)])
    assert feeds.refresh(feed.id).new_entries == 1
    assert [e.title for e in feeds.entries(feed.id)] == ["zeroth", "first", "second", "third"]


def test_unreported_entries_are_per_consumer_and_durable(tmp_path: Path, docs: Documents,
                                                         clock: FixedClock) -> None:
    docs.by_url["http://a.example/f"] = rss([(f"item {i}", f"Mon, 0{i + 1} Jan 2026 10:00:00 GMT")
                                             for i in range(5)])
    svc = make(tmp_path, docs, clock)
    svc.refresh(svc.subscribe("http://a.example/f").id)
    first = svc.unreported_entries("digest", limit=3)
    assert [e.title for e in first] == ["item 4", "item 3", "item 2"]
    svc.mark_reported("digest", [e.key for e in first])
    svc.close()

    svc = make(tmp_path, docs, clock)  # reopened: the marks were stored
    assert [e.title for e in svc.unreported_entries("digest")] == ["item 1", "item 0"]
    assert len(svc.unreported_entries("seuss")) == 5  # another consumer has its own marks
    svc.mark_reported("digest", [e.key for e in svc.unreported_entries("digest")])
    svc.mark_reported("digest", [first[0].key])  # marking twice is harmless
    assert svc.unreported_entries("digest") == []
    # A new fetch of the same items brings nothing back; a new item shows up once.
    docs.by_url["http://a.example/f"] = rss([("item 9", "Sat, 10 Jan 2026 10:00:00 GMT"), ("item 4", None)])
    svc.refresh_all()
    assert [e.title for e in svc.unreported_entries("digest")] == ["item 9"]
    with pytest.raises(BadRequest):
        svc.unreported_entries("bad consumer name!")
    svc.close()


def test_keys_are_stable_across_fetches_and_resubscribing(feeds: FeedService, docs: Documents) -> None:
    docs.by_url["http://a.example/f"] = rss([("x", None)])
    feed = feeds.subscribe("http://a.example/f")
    feeds.refresh(feed.id)
    key = feeds.latest_entries(1)[0].key
    feeds.mark_reported("digest", [key])
    feeds.unsubscribe(feed.id)
    assert feeds.latest_entries() == []  # entries go with the feed
    again = feeds.subscribe("http://a.example/f")
    feeds.refresh(again.id)
    assert feeds.latest_entries(1)[0].key == key
    assert feeds.unreported_entries("digest") == []  # still reported: a digest never repeats it


def test_entries_are_pruned_to_the_per_feed_cap(tmp_path: Path, docs: Documents, clock: FixedClock) -> None:
    svc = make(tmp_path, docs, clock, max_entries_per_feed=3)
    docs.by_url["http://a.example/f"] = rss([(f"n{i}", f"Mon, {10 + i} Jan 2026 10:00:00 GMT") for i in range(6)])
    feed = svc.subscribe("http://a.example/f")
    svc.refresh(feed.id)
    assert svc.get(feed.id).entry_count == 3
    assert [e.title for e in svc.entries(feed.id)] == ["n5", "n4", "n3"]
    svc.close()


def test_refresh_all_survives_any_failure(feeds: FeedService, docs: Documents) -> None:
    docs.by_url["http://ok.example/f"] = rss([("fine", None)])
    docs.by_url["http://boom.example/f"] = RuntimeError("unexpected")
    ok = feeds.subscribe("http://ok.example/f")
    boom = feeds.subscribe("http://boom.example/f")
    missing = feeds.subscribe("http://missing.example/f")
    results = {r.feed_id: r for r in feeds.refresh_all()}
    assert results[ok.id].ok and results[ok.id].new_entries == 1
    assert not results[boom.id].ok and "RuntimeError" in (results[boom.id].error or "")
    assert results[missing.id].error == "HTTP 404 Not Found"
    assert feeds.get(boom.id).last_error and feeds.get(missing.id).error_count == 1


def test_subscription_and_reported_marks_survive_kill_9(tmp_path: Path) -> None:
    script = f"""
import os, signal
from pathlib import Path
from assistant.feeds.store import FeedStore
from datetime import datetime, UTC
store = FeedStore(Path({str(tmp_path)!r}) / "feeds.sqlite3")
store.add_feed("http://a.example/f", "A", datetime.now(UTC))
store.mark_reported("digest", ["k1", "k2"], datetime.now(UTC))
os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[2], check=False)
    assert proc.returncode == -9
    store = FeedStore(tmp_path / "feeds.sqlite3")
    assert [f.title for f in store.list_feeds()] == ["A"]
    reported = store._db.execute("SELECT key FROM reported WHERE consumer='digest' ORDER BY key").fetchall()
    assert reported == [("k1",), ("k2",)]
    store.close()


# -- HTTP API and CLI against a feed served on 127.0.0.1 ------------------------------------------------------


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with serve() as srv:
        srv.route("/news.xml", Reply(200, rss([("Hello", "Mon, 12 Jan 2026 10:00:00 GMT")], "News"),
                                     [("Content-Type", "application/rss+xml")]))
        srv.route("/page.html", Reply(200, b"<html><body>no feed</body></html>", [("Content-Type", "text/html")]))
        yield srv


def test_feeds_api(client: TestClient, feed_server: FeedServer) -> None:
    r = client.post("/api/feeds", json={"url": feed_server.url("/news.xml")})
    assert r.status_code == 201, r.text
    body = r.json()
    feed_id = body["feed"]["id"]
    assert body["feed"]["title"] == "News" and body["feed"]["entry_count"] == 1
    assert body["fetch"]["ok"] and body["fetch"]["new_entries"] == 1
    bad = client.post("/api/feeds", json={"url": feed_server.url("/page.html"), "title": "Broken"}).json()
    assert bad["fetch"]["ok"] is False
    assert bad["feed"]["last_error"].startswith("not a feed: the server sent an HTML page")

    listed = client.get("/api/feeds").json()["data"]
    assert [(f["id"], f["title"]) for f in listed] == [(feed_id, "News"), (bad["feed"]["id"], "Broken")]
    entries = client.get(f"/api/feeds/{feed_id}/entries").json()["data"]
    assert [(e["title"], e["published"]) for e in entries] == [("Hello", "2026-01-12T10:00:00+00:00")]
    assert client.get("/api/feeds/entries?limit=5").json()["data"][0]["key"] == entries[0]["key"]
    refreshed = client.post("/api/feeds/refresh").json()["data"]
    assert [r["new_entries"] for r in refreshed] == [0, 0]
    assert client.post(f"/api/feeds/{feed_id}/refresh").json()["ok"] is True

    for url, status in [("ftp://x/y", 400), ("javascript:alert(1)", 400), ("", 400)]:
        r = client.post("/api/feeds", json={"url": url})
        assert r.status_code == status and r.json()["error"]["message"], (url, r.text)
    assert client.post("/api/feeds", json={"title": "no url"}).status_code == 400
    assert client.post("/api/feeds", json={"url": "http://a/", "evil": 1}).status_code == 400
    assert client.get("/api/feeds/999/entries").status_code == 404
    assert client.delete(f"/api/feeds/{feed_id}").json() == {"id": feed_id, "deleted": True}
    r = client.delete(f"/api/feeds/{feed_id}")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"


def test_cli_against_a_running_app(tmp_path: Path, feed_server: FeedServer, settings: object,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    import uvicorn

    from assistant.app import create_app
    from assistant.cli import main
    from assistant.services import build_services
    from tests.daemon import free_port
    from tests.fakes import FakeLLM

    port = free_port()
    services = build_services(settings, clock=FixedClock(), llm=FakeLLM())  # type: ignore[arg-type]
    server = uvicorn.Server(uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            threading.Event().wait(0.02)  # polling a starting server, not waiting for time to pass
        config = tmp_path / "config.toml"
        config.write_text(f'[server]\nport = {port}\n')

        def run(*args: str) -> tuple[int, str, str]:
            code = main(["--config", str(config), "feeds", *args])
            out, err = capsys.readouterr()
            return code, out, err

        code, out, _ = run("add", feed_server.url("/news.xml"), "--title", "Daily")
        assert code == 0 and "subscribed 1: Daily" in out and "1 new of 1" in out
        code, out, _ = run("list")
        assert code == 0 and "Daily" in out and "1 entries" in out
        code, out, _ = run("entries")
        assert code == 0 and "[Daily] Hello" in out and "http://example.com/Hello" in out
        code, out, _ = run("refresh")
        assert code == 0 and "0 new of 1" in out
        code, out, err = run("add", "gopher://old.example/")
        assert code == 2 and "only http and https" in err
        code, out, _ = run("remove", "1")
        assert code == 0 and "removed feed 1" in out
        code, out, err = run("remove", "1")
        assert code == 2 and "no feed with id 1" in err
    finally:
        server.should_exit = True
        thread.join(10)


def test_cli_says_when_the_daemon_is_down(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from assistant.cli import main
    from tests.daemon import free_port

    config = tmp_path / "config.toml"
    config.write_text(f"[server]\nport = {free_port()}\n")
    assert main(["--config", str(config), "feeds", "list"]) == 2
    assert "the daemon is not running" in capsys.readouterr().err
