"""Fetching a feed over HTTP: httpx with a whole-fetch deadline, a size cap, limited redirects and
conditional GET (ETag / Last-Modified). Problems come back as FetchError or as a recorded ``problem``.

Where a feed may be fetched from (docs/feeds.md, "Private addresses"): only public addresses, unless
``feeds.allowed_networks`` lists the network. The check lives in the network backend under httpx, so it
applies to every connection: the first URL and every redirect hop. A host name is resolved once, every
address it resolves to is checked, and the connection is made to a checked address (the Host header and
TLS server name stay the host name), so a DNS answer that changes between check and connect
(rebinding) cannot reach a refused address. Errors from private targets say only "refused" or "could not
connect": the fetcher is not a port scanner.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import httpcore
import httpx

from assistant.core.errors import BadRequest
from assistant.feeds.decode import ACCEPT_ENCODING, BodyRefused, decode_body

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)
URL_MAX = 2048


class FetchError(Exception):
    """The fetch gave nothing usable (network error, timeout, HTTP error status...)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class FetchedDocument:
    url: str  # after redirects
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    not_modified: bool = False
    problem: str | None = None  # body incomplete: cut at max_bytes or connection dropped

    @property
    def complete(self) -> bool:
        return self.problem is None

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag") or None

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified") or None


def check_feed_url(url: str) -> str:
    """The URL stripped, or BadRequest: only absolute http/https URLs with a host are fetched."""
    url = (url or "").strip()
    if not url:
        raise BadRequest("url is required", code="invalid_url")
    if len(url) > URL_MAX:
        raise BadRequest(f"url is longer than {URL_MAX} characters", code="invalid_url")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise BadRequest(f"url is not valid: {exc}", code="invalid_url") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise BadRequest(
            f"only http and https feed URLs are accepted (got {parts.scheme or 'no'} scheme)",
            code="invalid_url",
        )
    if not parts.hostname:
        raise BadRequest("url has no host", code="invalid_url")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise BadRequest("url contains whitespace or control characters", code="invalid_url")
    return url


# -- where feeds may be fetched from ---------------------------------------------------------------------

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]  # (host, port) -> IP address strings, in connect order

ALLOW_SETTING = "feeds.allowed_networks"
COULD_NOT_CONNECT = "could not connect (ConnectError)"  # the whole story told about a private target
_CONNECTION_ERRORS = (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError)

_RFC1918 = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
_UNIQUE_LOCAL = ipaddress.IPv6Network("fc00::/7")
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_LEGACY_IPV4 = re.compile(r"^(?:0[xX][0-9a-fA-F]*|[0-9]+)(?:\.(?:0[xX][0-9a-fA-F]*|[0-9]+)){0,3}$")


def parse_network(text: str) -> IPNetwork:
    """ "192.168.1.0/24" (or one address, "192.168.1.20") -> a network; ValueError saying what is wrong."""
    try:
        return ipaddress.ip_network(str(text).strip(), strict=False)
    except ValueError:
        raise ValueError(
            f'{text!r} is not an IP network in CIDR form such as "192.168.1.0/24" or "fd00::/8"'
        ) from None


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (IPv4-mapped, IPv4-compatible, NAT64, 6to4)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in net for net in _NAT64) or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_class(ip: IPAddress) -> str | None:
    """None for a public address; else what makes it non-public ("loopback", "link-local", ...)."""
    inner = embedded_ipv4(ip)
    if inner is not None:
        inner_class = address_class(inner)
        if inner_class is not None or inner == getattr(ip, "ipv4_mapped", None):
            return inner_class  # a mapped address is exactly its IPv4 address
    if ip.is_loopback:
        return "loopback"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv4Address):
        if ip in _SHARED:
            return "shared (carrier-grade NAT)"
        if any(ip in net for net in _RFC1918):
            return "private (RFC 1918)"
    else:
        if ip in _UNIQUE_LOCAL:
            return "private (unique local IPv6)"
        if ip.is_site_local:
            return "site-local"
    if ip.is_reserved or not ip.is_global:
        return "reserved"
    return None


def literal_address(host: str) -> IPAddress | None:
    """The address a host written as an IP stands for, in any form a resolver accepts ("127.0.0.1",
    "::1", "2130706433", "0x7f.1", "0177.0.0.1"); None for a name. Never does a DNS lookup."""
    host = unquote(host.strip("[]"))
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _is_localhost_name(host: str) -> bool:
    name = host.lower().rstrip(".")
    return name == "localhost" or name.endswith(".localhost")  # always loopback (RFC 6761)


def system_resolver(host: str, port: int) -> list[str]:
    """getaddrinfo's addresses for ``host``, in its order, without repeats."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class AddressRefused(Exception):
    """A feed URL (or a redirect) leads to an address that is not public and not allowed."""

    def __init__(self, host: str, address_class: str, *, resolved: bool) -> None:
        self.host = host
        self.address_class = address_class
        verb = "resolves to" if resolved else "is"
        self.message = (
            f"refused: {host!r} {verb} a {address_class} address; feeds are fetched only from public "
            f'addresses unless {ALLOW_SETTING} lists the network (e.g. "192.168.1.0/24")'
        )
        super().__init__(self.message)


class AddressPolicy:
    """Which addresses may be connected to: public ones, and any inside ``allowed`` networks."""

    def __init__(self, allowed: Iterable[str | IPNetwork] = ()) -> None:
        self.allowed: tuple[IPNetwork, ...] = tuple(
            n if isinstance(n, ipaddress.IPv4Network | ipaddress.IPv6Network) else parse_network(n)
            for n in allowed
        )

    def is_allowed_network(self, ip: IPAddress) -> bool:
        forms = [ip] + [v4 for v4 in (embedded_ipv4(ip),) if v4 is not None]
        return any(f.version == net.version and f in net for f in forms for net in self.allowed)

    def refusal(self, ip: IPAddress) -> str | None:
        """None when ``ip`` may be connected to, else the address class that stops it."""
        if self.is_allowed_network(ip):
            return None
        return address_class(ip)

    def addresses(self, host: str, port: int, resolver: Resolver) -> list[IPAddress]:
        """The addresses to connect to for ``host``: resolved once, each checked; AddressRefused when none
        may be used. Resolver errors (OSError) propagate."""
        literal = literal_address(host)
        if literal is not None:
            candidates, resolved = [literal], False
        elif _is_localhost_name(host):
            candidates, resolved = [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")], True
        else:
            candidates = [ipaddress.ip_address(a) for a in resolver(host, port)]
            resolved = True
        # An IPv4-mapped IPv6 address is connected to as the IPv4 address it is.
        candidates = [
            ip.ipv4_mapped or ip if isinstance(ip, ipaddress.IPv6Address) else ip for ip in candidates
        ]
        usable: list[IPAddress] = []
        first_refusal: str | None = None
        for ip in candidates:
            why = self.refusal(ip)
            if why is None:
                usable.append(ip)
            elif first_refusal is None:
                first_refusal = why
        if not usable:
            raise AddressRefused(host, first_refusal or "unknown", resolved=resolved)
        return usable


# The monotonic time by which the fetch running in this context must end (set by FeedFetcher.fetch): every
# connect, read and write of its connections gets at most what is left, so the deadline holds while
# connecting and reading headers too, not only between body pieces.
_fetch_deadline: ContextVar[float | None] = ContextVar("fetch_deadline", default=None)


def _left(timeout: float | None) -> float | None:
    """``timeout`` cut to what is left before this fetch's deadline; past it, a timeout now."""
    deadline = _fetch_deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("whole-fetch deadline passed")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A connection whose every operation ends by the running fetch's deadline (see ``_fetch_deadline``);
    a pooled connection takes the deadline of the fetch using it now."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, _left(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's sync backend, connecting only to addresses the policy allows (checked per connection)."""

    _MEMORY = 4096

    def __init__(self, policy: AddressPolicy, resolver: Resolver | None = None) -> None:
        self.policy = policy
        self.resolver = resolver or system_resolver
        self._inner = httpcore.SyncBackend()
        self._private: dict[tuple[str, int], bool] = {}  # origins last reached at a non-public address
        self._lock = threading.Lock()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self.policy.addresses(host, port, self.resolver)
        except OSError as exc:  # the name does not resolve
            raise httpcore.ConnectError(str(exc)) from None
        private = any(address_class(ip) is not None for ip in addresses)
        self.remember(host, port, private)
        last: Exception | None = None
        for ip in addresses:
            try:
                # A numeric host: the inner backend's getaddrinfo does no lookup, so this is the checked IP.
                stream = self._inner.connect_tcp(str(ip), port, _left(timeout), local_address, socket_options)
                return DeadlineStream(stream)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        if private:  # no errno text ("Connection refused", "No route to host"): a timeout or a failure
            raise type(last)(COULD_NOT_CONNECT) from None
        raise last

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("feeds are not fetched over unix sockets")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)

    def remember(self, host: str, port: int, private: bool) -> None:
        with self._lock:
            if len(self._private) >= self._MEMORY:
                self._private.clear()
            self._private[(host.lower(), port)] = private

    def is_private_origin(self, host: str, port: int) -> bool:
        literal = literal_address(host)
        if literal is not None:
            return address_class(literal) is not None
        if _is_localhost_name(host):
            return True
        with self._lock:
            return self._private.get((host.lower(), port), False)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over a :class:`GuardedBackend` (httpx 0.28 takes no network backend itself)."""

    def __init__(self, backend: GuardedBackend, limits: httpx.Limits) -> None:
        ssl_context = httpx.create_ssl_context()
        super().__init__(verify=ssl_context, limits=limits)
        self.backend = backend
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


class FeedFetcher:
    """One reusable httpx client (thread-safe) for every feed.

    Connections go only to public addresses and to ``allowed_networks`` (CIDR strings). ``resolver``
    replaces getaddrinfo (tests). ``transport`` replaces the network altogether (tests with
    httpx.MockTransport): no connection is made, so no address is checked at connect time. ``accept`` is
    the Accept header (web pages, assistant.pages, ask for HTML instead of feeds).
    """

    def __init__(
        self,
        *,
        timeout: float,
        max_bytes: int,
        max_redirects: int = 5,
        user_agent: str = "assistant-feeds/0.1",
        max_connections: int = 8,
        allowed_networks: Iterable[str | IPNetwork] = (),
        resolver: Resolver | None = None,
        transport: httpx.BaseTransport | None = None,
        accept: str = ACCEPT,
    ) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.policy = AddressPolicy(allowed_networks)
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self.backend: GuardedBackend | None = None
        if transport is None:
            self.backend = GuardedBackend(self.policy, resolver)
            # An explicit transport also means httpx ignores HTTP(S)_PROXY: a proxy would connect for us,
            # past the address check.
            transport = GuardedTransport(self.backend, limits)
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=True,
            max_redirects=max_redirects,
            headers={"User-Agent": user_agent, "Accept": accept, "Accept-Encoding": ACCEPT_ENCODING},
            limits=limits,
            transport=transport,
        )

    def check_destination(self, url: str) -> str:
        """``url`` (checked by check_feed_url) when its host may be fetched from, else BadRequest (400)
        naming the address class and the setting. Resolves the host name (a name that does not resolve
        now is accepted: the fetch will report it). The fetch checks again, at every connection."""
        url = check_feed_url(url)
        host = urlsplit(url).hostname or ""
        port = urlsplit(url).port or (443 if url.lower().startswith("https") else 80)
        literal = literal_address(host) is not None or _is_localhost_name(host)
        if self.backend is None and not literal:
            return url  # a test transport: no network, nothing to resolve
        resolver = self.backend.resolver if self.backend is not None else system_resolver
        try:
            self.policy.addresses(host, port, resolver)
        except AddressRefused as exc:
            raise BadRequest(exc.message, code="url_refused") from None
        except (OSError, UnicodeError, ValueError):
            pass
        return url

    def close(self) -> None:
        self._client.close()

    def fetch(self, url: str, etag: str | None = None, last_modified: str | None = None) -> FetchedDocument:
        url = check_feed_url(url)
        if self.backend is not None:
            # An address written out is refused here even in spellings httpx rejects ("0177.0.0.1"); the
            # backend checks every connection, redirects included.
            host = urlsplit(url).hostname or ""
            literal = literal_address(host)
            why = None if literal is None else self.policy.refusal(literal)
            if why is not None:
                raise FetchError(AddressRefused(host, why, resolved=False).message)
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        deadline = time.monotonic() + self.timeout
        context = _fetch_deadline.set(deadline)  # connect and headers too (DeadlineStream)
        try:
            with self._client.stream("GET", url, headers=headers) as resp:
                return self._read(resp, deadline)
        except AddressRefused as exc:
            raise FetchError(exc.message) from None
        except httpx.InvalidURL as exc:
            raise FetchError(f"url is not valid: {exc}") from None
        except httpx.HTTPError as exc:
            if isinstance(exc, _CONNECTION_ERRORS) and self._from_private_target(exc):
                # Connection-level trouble at a non-public address reads the same whatever the cause, so
                # the error text cannot tell a closed port from an open one.
                if isinstance(exc, httpx.TimeoutException):
                    raise FetchError(f"timed out after {self.timeout:g}s (could not connect)") from None
                raise FetchError(COULD_NOT_CONNECT) from None
            raise _fetch_error(exc, self.timeout) from None
        finally:
            _fetch_deadline.reset(context)

    def _from_private_target(self, exc: httpx.TransportError) -> bool:
        """Whether the failed request went to a non-public (allowed) address: its errors stay vague."""
        if self.backend is None:
            return False
        try:
            url = exc.request.url
        except RuntimeError:  # no request attached
            return False
        host = url.raw_host.decode("ascii", "replace")  # as the backend saw it (IDNA-encoded)
        return self.backend.is_private_origin(host, url.port or (443 if url.scheme == "https" else 80))

    def _read(self, resp: httpx.Response, deadline: float) -> FetchedDocument:
        final_url = str(resp.url)
        doc = FetchedDocument(
            url=final_url, status=resp.status_code, headers={k.lower(): v for k, v in resp.headers.items()}
        )
        if resp.status_code == 304:
            doc.not_modified = True
            return doc
        if resp.status_code >= 400:
            raise FetchError(f"HTTP {resp.status_code} {resp.reason_phrase}".strip(), status=resp.status_code)
        if not 200 <= resp.status_code < 300:
            raise FetchError(f"unexpected HTTP {resp.status_code}", status=resp.status_code)
        declared = resp.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            # Read only what fits; the first part of a feed still holds its newest entries.
            doc.problem = f"body of {int(declared)} bytes is over the {self.max_bytes}-byte limit"
        raw_size = 0
        broke: Exception | None = None

        def pieces() -> Iterator[bytes]:
            nonlocal raw_size, broke
            try:
                for piece in resp.iter_raw():  # undecoded, as read (64 KiB at most): decode_body inflates
                    raw_size += len(piece)
                    yield piece
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout("whole-fetch deadline passed")
            except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
                if not raw_size:
                    raise
                broke = exc  # keep what came: the first part of a feed still holds its newest entries

        encoding = resp.headers.get("content-encoding")
        if resp.is_stream_consumed:  # a test transport's response, made with its content in hand
            raw: Iterator[bytes] = iter([resp.content])
            encoding = None
        else:
            raw = pieces()
        try:
            decoded = decode_body(raw, encoding, self.max_bytes)
        except BodyRefused as exc:
            raise FetchError(str(exc)) from None
        if decoded.truncated:
            doc.problem = doc.problem or f"body is over the {self.max_bytes}-byte limit"
        elif broke is not None:
            doc.problem = f"download truncated after {raw_size} bytes ({type(broke).__name__})"
        elif decoded.corrupt:
            if not decoded.body:
                raise FetchError(f"the body could not be decoded: {decoded.corrupt}")
            doc.problem = f"download truncated after {len(decoded.body)} decoded bytes ({decoded.corrupt})"
        doc.body = decoded.body
        if doc.problem and "limit" in doc.problem:
            doc.problem += f"; parsed the first {len(doc.body)} bytes"
        return doc


def _fetch_error(exc: httpx.HTTPError, timeout: float) -> FetchError:
    if isinstance(exc, httpx.TooManyRedirects):
        return FetchError("too many redirects")
    if isinstance(exc, httpx.TimeoutException):
        return FetchError(f"timed out after {timeout:g}s ({type(exc).__name__})")
    if isinstance(exc, httpx.UnsupportedProtocol):
        return FetchError(f"redirected to an unsupported URL: {exc}")
    return FetchError(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
