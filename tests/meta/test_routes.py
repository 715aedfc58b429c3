"""Every route the app serves is exercised by some test: a route added without a test fails here.

The routes come from ``create_app(services)`` itself (every part's routers are mounted whether the part is
on or off). The evidence is the source of tests/*.py: the route's path, with each ``{param}`` matching any
one segment (``/api/memories/{memory_id}`` matches ``f"/api/memories/{mid}"`` and ``"/api/memories/42"``),
used with the route's method. The method is the nearest one named before the path in the same call --
``api.delete(f"/api/memories/{mid}")``, ``client.request("DELETE", ...)``, ``httpx.stream("GET", ...)`` --
and a path named with no method before it (a URL handed to a browser, an EventSource, ``has_endpoint``)
counts as a GET.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI

from assistant.app import create_app
from assistant.services import Services

TESTS = Path(__file__).resolve().parents[1]
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# FastAPI's own pages (the schema, and Swagger/ReDoc when they are on) are not the daemon's API.
FRAMEWORK = {("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/docs/oauth2-redirect"), ("GET", "/redoc")}

_SEGMENT_END = r"""(?=["'?#\s)]|$)"""  # the path ends here: a quote, a query, whitespace
_ANY_SEGMENT = r"""(?:\{[^{}\n]*\}|[^/\s"'?#{}()]+)"""  # a literal segment or an f-string field
_METHOD_BEFORE = re.compile(
    r"""\.(get|post|put|patch|delete)\(|["'](GET|POST|PUT|PATCH|DELETE)["']|method\s*=\s*["'](\w+)["']""",
    re.IGNORECASE,
)


def app_routes(services: Services, monkeypatch: pytest.MonkeyPatch) -> tuple[FastAPI, set[tuple[str, str]]]:
    """create_app(services) and its (method, path) pairs.

    FastAPI (0.16x) keeps an included router as one opaque entry of ``app.routes``, so the inclusions are
    recorded as create_app makes them (``APIRouter.include_router``, public) and each router's own routes,
    which carry its prefix, get the prefix it was included with.
    """
    included: dict[int, list[tuple[APIRouter, str]]] = {}
    original = APIRouter.include_router

    def recording(self: APIRouter, router: APIRouter, *args: Any, prefix: str = "", **kw: Any) -> None:
        included.setdefault(id(self), []).append((router, prefix))
        original(self, router, *args, prefix=prefix, **kw)

    monkeypatch.setattr(APIRouter, "include_router", recording)
    app = create_app(services)
    monkeypatch.undo()

    routes: set[tuple[str, str]] = set()

    def walk(router: APIRouter, prefix: str) -> None:
        for route in router.routes:
            path, methods = getattr(route, "path", None), getattr(route, "methods", None)
            if isinstance(path, str) and methods:
                routes.update((m, prefix + path) for m in set(methods) - {"HEAD", "OPTIONS"})
        for child, child_prefix in included.get(id(router), []):
            walk(child, prefix + child_prefix)

    walk(app.router, "")
    return app, routes


def _params(path: str) -> int:
    return path.count("{")


def path_pattern(path: str) -> re.Pattern[str]:
    if path == "/":  # the page: "/" alone in quotes, or after an f-string field (f"{url}/")
        return re.compile(r"""(?<=["'}])/(?=["'])""")
    parts = [_ANY_SEGMENT if re.fullmatch(r"\{[^}]+\}", p) else re.escape(p) for p in path.split("/")]
    return re.compile(r"(?<![\w/])" + "/".join(parts) + _SEGMENT_END)


def method_before(source: str, at: int) -> str:
    """The method of the call that names the path at ``at``: the last method named on the statement up to it
    (at most 3 lines back, not past a blank line), else GET."""
    start = source.rfind("\n", 0, at) + 1  # the start of the path's line
    for _ in range(3):
        if start == 0:
            break
        prev = source.rfind("\n", 0, start - 1) + 1
        if source[prev:start].strip() == "":
            break
        start = prev
    found = list(_METHOD_BEFORE.finditer(source, start, at))
    if not found:
        return "GET"
    m = found[-1]
    return next(g for g in m.groups() if g).upper()


def uses(source: str, method: str, path: str, routes: Collection[tuple[str, str]] = ()) -> bool:
    """Does ``source`` call ``method path``? A text that a route with fewer parameters also matches is that
    route's (``/api/notifications/stream`` is not a use of ``/api/notifications/{notification_id}``)."""
    narrower = [path_pattern(q) for m, q in routes if m == method and _params(q) < _params(path)]
    for m in path_pattern(path).finditer(source):
        if any(n.fullmatch(m.group(0)) for n in narrower):
            continue
        if method_before(source, m.start()) == method:
            return True
    return False


def test_every_route_has_a_test(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    app, routes = app_routes(services, monkeypatch)
    ours = routes - FRAMEWORK
    # The collection is complete: it holds every operation of the app's own OpenAPI schema, and the page.
    schema = {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops}
    assert schema <= ours and {("GET", "/"), ("GET", "/static/{name}")} <= ours
    assert len(schema) >= 30 and ("POST", "/v1/chat/completions") in schema
    sources = {
        str(p.relative_to(TESTS)): p.read_text(encoding="utf-8")
        for p in sorted(TESTS.rglob("*.py"))
        if p != Path(__file__).resolve()
    }
    untested = sorted(
        f"{method} {path}"
        for method, path in ours
        if not any(uses(source, method, path, routes) for source in sources.values())
    )
    assert untested == [], f"routes no test in tests/ calls: {untested}"


def test_the_matcher_needs_method_and_whole_path() -> None:
    src = (
        'r = api.delete(f"/api/memories/{ids[0]}")\n'
        "\n"
        'page = client.get("/api/skills?limit=2")\n'
        "\n"
        'r = httpx.post(server.url + "/api/schedules", json=body)\n'
        "\n"
        'with httpx.stream("GET", f"{base}/api/notifications/stream") as s: pass\n'
        "\n"
        "open_page(page, server)  # goes to server.url + \"/\"\n"
    )
    assert uses(src, "DELETE", "/api/memories/{memory_id}")
    assert not uses(src, "GET", "/api/memories/{memory_id}")  # the method counts
    assert not uses(src, "DELETE", "/api/memories")  # the whole path counts ...
    assert uses(src, "GET", "/api/skills")  # ... up to a query string
    assert not uses(src, "POST", "/api/skills/{name}/run")
    assert uses(src, "POST", "/api/schedules") and not uses(src, "GET", "/api/schedules")
    routes = {("GET", "/api/notifications/stream"), ("GET", "/api/notifications/{notification_id}")}
    assert uses(src, "GET", "/api/notifications/stream", routes)
    assert uses(src, "GET", "/api/notifications/{notification_id}")  # the text does match the pattern ...
    assert not uses(src, "GET", "/api/notifications/{notification_id}", routes)  # ... but it is the other route
    assert uses(src, "GET", "/") and not uses("x = a / b\n", "GET", "/")
