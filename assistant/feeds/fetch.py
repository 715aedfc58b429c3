"""Fetching a feed over HTTP: httpx with a whole-fetch deadline, a size cap, limited redirects and
conditional GET (ETag / Last-Modified). Problems come back as FetchError or as a recorded ``problem``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from assistant.core.errors import BadRequest

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
        raise BadRequest(f"only http and https feed URLs are accepted (got {parts.scheme or 'no'} scheme)",
                         code="invalid_url")
    if not parts.hostname:
        raise BadRequest("url has no host", code="invalid_url")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise BadRequest("url contains whitespace or control characters", code="invalid_url")
    return url


class FeedFetcher:
    """One reusable httpx client (thread-safe) for every feed."""

    def __init__(
        self,
        *,
        timeout: float,
        max_bytes: int,
        max_redirects: int = 5,
        user_agent: str = "assistant-feeds/0.1",
        max_connections: int = 8,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            follow_redirects=True,
            max_redirects=max_redirects,
            headers={"User-Agent": user_agent, "Accept": ACCEPT},
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def fetch(self, url: str, etag: str | None = None, last_modified: str | None = None) -> FetchedDocument:
        url = check_feed_url(url)
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        deadline = time.monotonic() + self.timeout
        try:
            with self._client.stream("GET", url, headers=headers) as resp:
                return self._read(resp, deadline)
        except httpx.TooManyRedirects:
            raise FetchError("too many redirects") from None
        except httpx.TimeoutException as exc:
            raise FetchError(f"timed out after {self.timeout:g}s ({type(exc).__name__})") from None
        except httpx.UnsupportedProtocol as exc:
            raise FetchError(f"redirected to an unsupported URL: {exc}") from None
        except httpx.HTTPError as exc:
            raise FetchError(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None

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
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in resp.iter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size > self.max_bytes:
                    doc.problem = doc.problem or f"body is over the {self.max_bytes}-byte limit"
                    break
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("whole-fetch deadline passed")
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.DecodingError) as exc:
            if not size:
                raise
            doc.problem = f"download truncated after {size} bytes ({type(exc).__name__})"
        doc.body = b"".join(chunks)[: self.max_bytes]
        if doc.problem and "limit" in doc.problem:
            doc.problem += f"; parsed the first {len(doc.body)} bytes"
        return doc
