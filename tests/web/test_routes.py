"""The web page's routes and the rules its static files keep (fast: TestClient, no browser)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from assistant.api.web import web_dir
from assistant.app import create_app
from assistant.config import Settings
from assistant.services import build_services
from tests.fakes import FakeLLM, FixedClock
from tests.settings_copy import changed

STATIC = ["index.html", "app.js", "style.css"]


@pytest.fixture
def token_client(settings: Settings) -> TestClient:
    services = build_services(changed(settings, server={"api_token": "s3cret"}), clock=FixedClock(), llm=FakeLLM())
    with TestClient(create_app(services)) as c:
        yield c


def test_index_is_served_with_a_strict_csp(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert '<script src="/static/app.js" defer></script>' in r.text
    csp = r.headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split("; ")}
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval'
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "unsafe" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("name", "media"),
    [("app.js", "javascript"), ("style.css", "text/css"), ("index.html", "text/html")],
)
def test_static_files_have_their_media_type(client: TestClient, name: str, media: str) -> None:
    r = client.get(f"/static/{name}")
    assert r.status_code == 200
    assert media in r.headers["content-type"]
    assert "content-security-policy" in r.headers
    assert r.headers.get("etag")  # cheap revalidation with Cache-Control: no-cache
    again = client.get(f"/static/{name}", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304


@pytest.mark.parametrize(
    "path",
    [
        "/static/nope.js",
        "/static/..%2Fapp.py",
        "/static/%2e%2e%2f__init__.py",
        "/static/.hidden",
        "/static/../app.py",
        "/static/",
    ],
)
def test_static_refuses_anything_outside_the_web_folder(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert "def create_app" not in r.text and "__future__" not in r.text


def test_page_needs_no_token_but_the_api_does(token_client: TestClient) -> None:
    assert token_client.get("/").status_code == 200
    assert token_client.get("/static/app.js").status_code == 200
    assert token_client.get("/api/conversations").status_code == 401
    ok = token_client.get("/api/conversations", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200


def test_the_page_is_not_in_the_openapi_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths and not any(p.startswith("/static") for p in paths)


def test_every_static_file_is_in_the_package_folder() -> None:
    for name in STATIC:
        assert (web_dir() / name).is_file(), name


# ---- rules the files keep, so the CSP holds and no answer is ever parsed as HTML ----


def _read(name: str) -> str:
    return (web_dir() / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", STATIC)
def test_no_third_party_references(name: str) -> None:
    # The SVG namespace is a name, not an address: createElementNS never fetches it.
    text = _read(name).replace('"http://www.w3.org/2000/svg"', '"SVG_NS"')
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), "a remote URL"
    assert "@import" not in text and "url(" not in text  # no remote fonts or images from CSS


def test_html_has_no_inline_script_style_or_handlers() -> None:
    html = _read("index.html")
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all('src="/static/' in attrs and not body.strip() for attrs, body in scripts)
    assert not re.search(r"\son[a-z]+\s*=", html), "an inline event handler"
    assert not re.search(r"\sstyle\s*=", html), "an inline style attribute"
    assert "<style" not in html


def test_script_never_builds_html_from_strings() -> None:
    js = _read("app.js")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in js, sink
    assert not re.search(r"setTimeout\(\s*['\"`]", js), "setTimeout with a string"
