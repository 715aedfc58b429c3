"""Feed URLs cannot reach private addresses (issue 9, hole 5): loopback, RFC 1918, link-local, the daemon
itself, in every spelling, by name, by redirect and by a DNS answer that changes. Refused with a 400 that
names the address class and the setting, before any connection; allowed per network by
``feeds.allowed_networks``.

Loopback only: every test here runs under ``loopback_only``, which fails the test on any connection to
an address outside 127.0.0.0/8 and ::1 (and refuses it, so no packet leaves), and answers name lookups
for anything but "localhost" with "no such name", so no DNS query leaves either.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from assistant.app import create_app
from assistant.config import load_settings
from assistant.core.errors import BadRequest, ConfigError
from assistant.feeds.fetch import COULD_NOT_CONNECT, FeedFetcher, FetchError, address_class, literal_address
from assistant.feeds.service import FeedService
from assistant.feeds.store import FeedStore
from assistant.services import build_services
from tests.fakes import FakeLLM, FixedClock
from tests.feeds_server import FeedServer, Reply, serve

RSS = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>Local</title>'
    b"<item><title>One</title><link>http://example.com/1</link></item></channel></rss>"
)
RSS_TYPE = [("Content-Type", "application/rss+xml")]

# (URL, the address class the refusal must name)
PRIVATE_TARGETS = [
    ("http://127.0.0.1/feed.xml", "loopback"),
    ("http://127.0.0.2:8765/api/notifications", "loopback"),
    ("http://10.0.0.1/feed.xml", "private (RFC 1918)"),
    ("http://10.255.255.254:8080/", "private (RFC 1918)"),
    ("http://172.16.0.1/feed.xml", "private (RFC 1918)"),
    ("http://172.31.255.1/", "private (RFC 1918)"),
    ("http://192.168.1.1/feed.xml", "private (RFC 1918)"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://100.64.0.1/", "shared (carrier-grade NAT)"),
    ("http://0.0.0.0:8765/", "unspecified"),
    ("http://[::1]/feed.xml", "loopback"),
    ("http://[::1]:8765/api/feeds", "loopback"),
    ("http://[::]/", "unspecified"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),  # IPv4-mapped IPv6
    ("http://[::ffff:7f00:1]/", "loopback"),
    ("http://[::ffff:169.254.169.254]/", "link-local"),
    ("http://[::ffff:10.0.0.1]/", "private (RFC 1918)"),
    ("http://[2002:7f00:1::1]/", "loopback"),  # 6to4 of 127.0.0.1
    ("http://[64:ff9b::a00:1]/", "private (RFC 1918)"),  # NAT64 of 10.0.0.1
    ("http://[fd00::1]/", "private (unique local IPv6)"),
    ("http://[fe80::1]/", "link-local"),
    ("http://2130706433/", "loopback"),  # decimal 127.0.0.1
    ("http://2852039166/latest/meta-data/", "link-local"),  # decimal 169.254.169.254
    ("http://0177.0.0.1/", "loopback"),  # octal
    ("http://0x7f.0.0.1/", "loopback"),  # hex
    ("http://0x7f000001/", "loopback"),
    ("http://127.1/", "loopback"),  # short form
    ("http://012.0.0.1/", "private (RFC 1918)"),  # octal 10.0.0.1
    ("http://localhost/feed.xml", "loopback"),  # a name that resolves to loopback
    ("http://LOCALHOST./feed.xml", "loopback"),
    ("http://feeds.localhost:8080/", "loopback"),
    ("https://localhost/feed.xml", "loopback"),
    ("http://user:pw@127.0.0.1/feed.xml", "loopback"),
    ("http://224.0.0.1/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
]


def install_loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Make this process loopback-only for the test: every connect() is recorded, one to an address
    outside 127.0.0.0/8 and ::1 fails the test (AssertionError inside connect(), before the system
    call), and name lookups but "localhost" answer "no such name" (no DNS query leaves). Returns the
    recorded connect() addresses. Used by the API fuzz and hostile-input tests too."""
    attempts: list[Any] = []
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0]).split("%", 1)[0]
            assert ipaddress.ip_address(host).is_loopback, f"the test tried to connect to {address!r}"
        real_connect(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        numeric = name is None or literal_address(str(name)) is not None
        if not numeric and str(name).lower().rstrip(".") != "localhost":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (no DNS in tests)")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return attempts


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every connect() the process makes during the test (see install_loopback_only)."""
    return install_loopback_only(monkeypatch)


def outside_loopback(attempts: list[Any]) -> list[Any]:
    return [
        a
        for a in attempts
        if isinstance(a, tuple) and not ipaddress.ip_address(a[0].split("%")[0]).is_loopback
    ]


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with serve() as srv:
        yield srv


def app_client(tmp_path: Path, allowed: list[str]) -> TestClient:
    settings = load_settings(
        None, data_dir=tmp_path / "data", memory={"enabled": False}, scheduler={"enabled": False},
        feeds={"allowed_networks": allowed, "timeout": 5},
    )  # fmt: skip
    return TestClient(create_app(build_services(settings, clock=FixedClock(), llm=FakeLLM())))


@pytest.fixture
def strict_api(tmp_path: Path) -> Iterator[TestClient]:
    """The daemon as installed: no network allowed beyond the public internet."""
    with app_client(tmp_path, []) as c:
        yield c


@pytest.fixture
def loopback_api(tmp_path: Path) -> Iterator[TestClient]:
    """The daemon with 127.0.0.0/8 opted in (as the test suite runs it)."""
    with app_client(tmp_path, ["127.0.0.0/8"]) as c:
        yield c


def fetcher(allowed: list[str] | None = None, **kw: Any) -> FeedFetcher:
    return FeedFetcher(timeout=5, max_bytes=1_000_000, max_redirects=3, allowed_networks=allowed or [], **kw)


def service_with(tmp_path: Path, f: FeedFetcher) -> FeedService:
    return FeedService(FeedStore(tmp_path / "feeds.sqlite3"), f, FixedClock())


# -- refused by default ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "klass"), PRIVATE_TARGETS)
def test_private_targets_are_a_400_naming_the_class_and_the_setting(
    strict_api: TestClient, loopback_only: list[Any], url: str, klass: str
) -> None:
    r = strict_api.post("/api/feeds", json={"url": url, "refresh": True})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == "url_refused" and err["type"] == "invalid_request_error"
    assert err["message"].startswith("refused: ")
    assert f"a {klass} address" in err["message"] and "feeds.allowed_networks" in err["message"]
    assert strict_api.get("/api/feeds").json()["data"] == []  # nothing was subscribed
    assert loopback_only == []  # refused before any connection


@pytest.mark.parametrize(("url", "klass"), PRIVATE_TARGETS)
def test_the_fetcher_itself_refuses_before_connecting(loopback_only: list[Any], url: str, klass: str) -> None:
    """Feeds stored before this rule (or added behind the API's back) are refused at fetch time too."""
    f = fetcher()
    try:
        with pytest.raises(FetchError) as info:
            f.fetch(url)
    finally:
        f.close()
    assert info.value.message.startswith("refused: ") and f"a {klass} address" in info.value.message
    assert loopback_only == []


def test_public_addresses_are_not_classified_private() -> None:
    for text in (
        "93.184.216.34",
        "1.1.1.1",
        "2606:4700:4700::1111",
        "::ffff:93.184.216.34",
        "2002:5db8:d822::1",
    ):
        ip = ipaddress.ip_address(text)
        assert address_class(ip) is None, text


def test_a_name_resolving_to_a_private_address_is_refused_by_name(
    loopback_only: list[Any], tmp_path: Path
) -> None:
    def resolver(host: str, port: int) -> list[str]:
        return {"nas.lan": ["192.168.1.20"], "mixed.example": ["fd00::5", "10.1.1.1"]}[host]

    svc = service_with(tmp_path, fetcher(resolver=resolver))
    try:
        for url in ("http://nas.lan/feed.xml", "https://mixed.example/rss"):
            with pytest.raises(BadRequest) as info:
                svc.subscribe(url)
            msg = info.value.message
            assert "resolves to a private" in msg and "feeds.allowed_networks" in msg
            assert "192.168.1.20" not in msg and "10.1.1.1" not in msg  # the resolved address is not told
    finally:
        svc.close()
    assert loopback_only == []


# -- every hop, every connection ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://10.0.0.1/admin",
        "http://192.168.0.1:8080/",
        "http://[::ffff:10.0.0.1]/",
        "http://2852039166/",
        "http://[fd00::1]:80/",
    ],
)
def test_a_redirect_from_an_allowed_server_to_a_private_address_is_refused(
    server: FeedServer, loopback_only: list[Any], tmp_path: Path, target: str
) -> None:
    start = server.route("/moved.xml", Reply(302, b"", [("Location", target)]))
    svc = service_with(tmp_path, fetcher(["127.0.0.0/8"]))
    try:
        feed = svc.subscribe(start)  # 127.0.0.1 is allowed here
        result = svc.refresh(feed.id)
    finally:
        svc.close()
    assert not result.ok and result.error is not None and result.error.startswith("refused: ")
    assert "feeds.allowed_networks" in result.error
    assert [path for path, _ in server.requests] == ["/moved.xml"]
    assert outside_loopback(loopback_only) == []  # the private hop was never connected to


def test_a_redirect_to_the_loopback_daemon_is_refused_when_only_a_lan_is_allowed(
    server: FeedServer, loopback_only: list[Any], tmp_path: Path
) -> None:
    """Allowing one network does not open the others: a LAN opt-in still keeps loopback shut."""

    def resolver(host: str, port: int) -> list[str]:
        assert host == "feeds.example"
        return ["127.0.0.1"]

    f = fetcher(["10.0.0.0/8"], resolver=resolver)
    try:
        with pytest.raises(FetchError) as info:
            f.fetch(f"http://feeds.example:{server.server_address[1]}/x")
    finally:
        f.close()
    assert "resolves to a loopback address" in info.value.message
    assert server.requests == [] and loopback_only == []


def test_dns_rebinding_between_check_and_connect_cannot_reach_a_private_address(
    loopback_only: list[Any], tmp_path: Path
) -> None:
    """The name is public when subscribed, private when fetched: each connection resolves once and
    checks what it connects to."""
    answers = iter([["93.184.216.34"], ["127.0.0.1"], ["10.0.0.1"]])
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    svc = service_with(tmp_path, fetcher(resolver=resolver))
    try:
        feed = svc.subscribe("http://rebind.example/feed.xml")  # a public answer: accepted, nothing fetched
        first = svc.refresh(feed.id)
        second = svc.refresh(feed.id)
    finally:
        svc.close()
    assert calls == ["rebind.example"] * 3  # once per check / connection
    assert first.error is not None and "resolves to a loopback address" in first.error
    assert second.error is not None and "resolves to a private (RFC 1918) address" in second.error
    assert loopback_only == []  # not even the public address: subscribing only resolves


def test_the_connection_goes_to_the_checked_address_with_the_host_name_kept(
    server: FeedServer, loopback_only: list[Any]
) -> None:
    """Resolved once, connected to the IP that was checked; Host still names the site. An answer holding a
    refused address too only ever connects to the allowed one."""
    server.route("/feed.xml", Reply(200, RSS, RSS_TYPE))
    port = server.server_address[1]
    resolved: list[str] = []

    def resolver(host: str, p: int) -> list[str]:
        resolved.append(host)
        return ["10.9.9.9", "127.0.0.1"]  # the first is refused (not allowed), never tried

    f = fetcher(["127.0.0.0/8"], resolver=resolver)
    try:
        doc = f.fetch(f"http://site.example:{port}/feed.xml")
    finally:
        f.close()
    assert doc.status == 200 and b"<title>One</title>" in doc.body
    assert resolved == ["site.example"]
    assert server.requests[0][1]["host"] == f"site.example:{port}"
    assert [a[0] for a in loopback_only] == ["127.0.0.1"]


def test_proxy_variables_do_not_route_around_the_check(
    server: FeedServer, loopback_only: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With HTTP(S)_PROXY set, a proxy would connect on our behalf past the address check: not used."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # a closed port: used, it would fail the fetch
    url = server.route("/feed.xml", Reply(200, RSS, RSS_TYPE))
    f = fetcher(["127.0.0.0/8"])
    try:
        assert f.fetch(url).status == 200
        with pytest.raises(FetchError, match="refused: '10.0.0.1' is a private"):
            f.fetch("http://10.0.0.1/feed.xml")
    finally:
        f.close()
    assert outside_loopback(loopback_only) == []


# -- opting in ------------------------------------------------------------------------------------------------


def test_an_allowed_network_is_fetched(loopback_api: TestClient, server: FeedServer) -> None:
    url = server.route("/feed.xml", Reply(200, RSS, RSS_TYPE))
    r = loopback_api.post("/api/feeds", json={"url": url})
    assert r.status_code == 201, r.text
    assert r.json()["fetch"]["ok"] and r.json()["fetch"]["new_entries"] == 1
    # the same daemon still refuses what 127.0.0.0/8 does not cover
    r = loopback_api.post("/api/feeds", json={"url": "http://192.168.1.10/feed.xml"})
    assert r.status_code == 400 and "private (RFC 1918)" in r.json()["error"]["message"]


def test_a_home_nas_can_be_allowed(tmp_path: Path, loopback_only: list[Any]) -> None:
    """The NAS's network opted in: subscribing is accepted (no fetch here, so no packet leaves)."""
    with app_client(tmp_path, ["192.168.1.0/24", "fd00::/8"]) as api:
        for url in ("http://192.168.1.20:8080/rss.xml", "http://[fd00::20]/feed.xml"):
            r = api.post("/api/feeds", json={"url": url, "refresh": False})
            assert r.status_code == 201, r.text
        r = api.post("/api/feeds", json={"url": "http://192.168.2.20/rss.xml", "refresh": False})
        assert r.status_code == 400  # the next subnet is not
    assert loopback_only == []


def test_the_test_suite_opts_in_through_the_environment() -> None:
    assert load_settings(None).feeds.allowed_networks == ["127.0.0.0/8"]


@pytest.mark.parametrize("bad", [["192.168.1.0/33"], ["nas.local"], ["10.0.0.0/8", "300.1.1.1"], [""]])
def test_a_bad_network_is_one_config_line_naming_the_setting(bad: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, feeds={"allowed_networks": bad})
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("feeds.allowed_networks") and "CIDR" in msg


def test_networks_are_normalized_at_load() -> None:
    settings = load_settings(None, feeds={"allowed_networks": ["192.168.1.7/24", "10.0.0.5", " fd00::/8 "]})
    assert settings.feeds.allowed_networks == ["192.168.1.0/24", "10.0.0.5/32", "fd00::/8"]


# -- no port scanner -------------------------------------------------------------------------------------------


def test_errors_from_allowed_private_targets_do_not_tell_closed_from_open(
    loopback_api: TestClient, tmp_path: Path
) -> None:
    """A closed port and a port that hangs up say the same thing: no errno text, no exception class."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()

    rude = socket.socket()
    rude.bind(("127.0.0.1", 0))
    rude.listen(8)
    rude.settimeout(0.05)  # the accept loop looks at ``stop`` between waits
    stop = threading.Event()

    def hang_up() -> None:
        while not stop.is_set():
            try:
                conn, _ = rude.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.close()

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    try:
        errors = []
        for port in (closed_port, rude.getsockname()[1]):
            r = loopback_api.post("/api/feeds", json={"url": f"http://127.0.0.1:{port}/feed.xml"})
            assert r.status_code == 201
            errors.append(r.json()["fetch"]["error"])
    finally:
        stop.set()
        thread.join(5)
        rude.close()
    assert errors == [COULD_NOT_CONNECT, COULD_NOT_CONNECT]
