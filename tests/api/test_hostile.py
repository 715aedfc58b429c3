"""Hostile input to every part of the API (issue 9, hole 6): a 4xx naming the field, never a 500.

The daemon runs whole (fake model, memory with the hashing embedder, notifications, feeds, skills and the
scheduler), in process. Cases: integers past SQLite's 64 bits in every integer parameter, path-like ids
on every id route, bodies that are not UTF-8, JSON nested 10,000 deep, NUL bytes, lone UTF-16 surrogates
and 1,000,000-character strings in every text field, and the inputs found before (a time zone that is a
directory of the zone database, ``where=a b=1``, ``every 600000 weeks``). Loopback only: the process may
connect to nothing but loopback and look up no name (``install_loopback_only``).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from assistant.app import create_app
from assistant.config import load_settings
from assistant.services import Services, build_services
from tests.fakes import FakeLLM
from tests.feeds.test_ssrf import install_loopback_only
from tests.memory_fakes import HashingEmbedder

HUGE = [2**63, 2**64, 10**30, -(2**63) - 1]
PATH_LIKE = [
    "../../etc/passwd",
    "..%2f..%2fetc%2fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "%252e%252e%252fetc%252fpasswd",
    "....%2f%2f....%2f%2fetc%2fpasswd",
    "..%5c..%5cwindows%5cwin.ini",
    "%00",
    "a%00b",
    "%2fetc%2fpasswd",
    "~root",
    "%ff%fe",
]
LONG = "x" * 1_000_000


def full_services(tmp_path: Path, **overrides: Any) -> Services:
    """Every part on, the model faked; memory uses the hashing embedder (no model download)."""
    settings = load_settings(
        None,
        data_dir=tmp_path / "data",
        memory={"enabled": True, "recall_k": 5, "recall_token_budget": 512, "recall_min_similarity": 0.0},
        notify={"desktop": False},
        scheduler={"enabled": True},
        feeds={"allowed_networks": []},  # as installed: feeds from public addresses only
        **overrides,
    )
    return build_services(settings, llm=FakeLLM(), embedder=HashingEmbedder())


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    install_loopback_only(monkeypatch)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One daemon for the module, with one of each thing so that every id route has something to find."""
    tmp = tmp_path_factory.mktemp("hostile")
    mp = pytest.MonkeyPatch()
    # conftest's isolation is per test; this fixture outlives one, so it isolates itself the same way.
    for key in [k for k in os.environ if k.startswith("ASSISTANT_")]:
        mp.delenv(key)
    mp.setenv("HOME", str(tmp / "home"))
    mp.setenv("HF_HUB_OFFLINE", "1")
    install_loopback_only(mp)
    try:
        services = full_services(tmp, server={"allowed_hosts": ["testserver"]})
        with TestClient(create_app(services), raise_server_exceptions=False) as c:
            assert (
                c.post("/api/memories", json={"text": "The boiler was serviced in March"}).status_code == 201
            )
            assert c.post("/api/notifications", json={"title": "hello"}).status_code == 201
            r = c.post("/api/feeds", json={"url": "https://feed.example/rss.xml", "refresh": False})
            assert r.status_code == 201, r.text
            r = c.post("/api/schedules", json={"skill": "time", "schedule": "every 15 minutes"})
            assert r.status_code == 201, r.text
            r = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
            assert r.status_code == 200, r.text
            yield c
    finally:
        mp.undo()


def refused(r: Response, *fragments: str) -> None:
    """A 4xx in the OpenAI error shape whose message names each fragment."""
    assert 400 <= r.status_code < 500, f"{r.status_code}: {r.text[:300]}"
    message = r.json()["error"]["message"]
    for fragment in fragments:
        assert fragment in message, message


def not_5xx(r: Response) -> None:
    assert r.status_code < 500, f"{r.status_code}: {r.text[:300]}"
    if r.status_code >= 400 and r.headers.get("content-type", "").startswith("application/json"):
        assert r.json()["error"]["message"]


# -- the cases found before -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "zone", ["America", "Europe", "posix", "right", "../zoneinfo", "x" * 300, "/etc/localtime"]
)
def test_a_zone_that_is_a_directory_or_a_path_is_a_400(api: TestClient, zone: str) -> None:
    refused(api.post("/api/skills/time/run", json={"timezone": zone}), "timezone")
    refused(
        api.post("/api/schedules", json={"skill": "time", "schedule": "hourly", "timezone": zone}), "timezone"
    )


def test_where_with_a_space_in_the_key_is_a_400_naming_where(api: TestClient) -> None:
    refused(api.get("/api/memories/search", params={"q": "boiler", "where": "a b=1"}), "where", "'a b'")
    refused(api.get("/api/memories/search", params={"q": "boiler", "where": "$.x=1"}), "where")
    refused(api.get("/api/memories/search", params={"q": "boiler", "where": "novalue"}), "where")


@pytest.mark.parametrize(
    "schedule",
    ["every 600000 weeks", "every 99999999999999999999999 minutes", "every " + "9" * 150 + " days"],
)
def test_an_interval_too_long_is_a_400_naming_the_schedule(api: TestClient, schedule: str) -> None:
    refused(api.post("/api/schedules", json={"skill": "time", "schedule": schedule}), "schedule")


def test_a_cron_that_never_fires_is_not_a_500(api: TestClient) -> None:
    not_5xx(api.post("/api/schedules", json={"skill": "time", "schedule": "0 0 31 2 *"}))
    refused(api.post("/api/schedules", json={"skill": "time", "schedule": "0 99999999999999999999 * * *"}))


# -- huge integers ------------------------------------------------------------------------------------------------

INT_QUERIES = [
    ("/api/memories", "offset"),
    ("/api/memories", "limit"),
    ("/api/notifications", "offset"),
    ("/api/notifications", "limit"),
    ("/api/conversations", "offset"),
    ("/api/conversations", "limit"),
    ("/api/memories/search?q=boiler", "k"),
    ("/api/feeds/entries", "limit"),
    ("/api/feeds/1/entries", "limit"),
]
INT_PATHS = [
    ("GET", "/api/feeds/{}"),
    ("DELETE", "/api/feeds/{}"),
    ("POST", "/api/feeds/{}/refresh"),
    ("GET", "/api/feeds/{}/entries"),
    ("GET", "/api/notifications/{}"),
]


@pytest.mark.parametrize("value", HUGE)
@pytest.mark.parametrize(("path", "name"), INT_QUERIES)
def test_huge_integers_in_queries_are_a_400_naming_the_parameter(
    api: TestClient, path: str, name: str, value: int
) -> None:
    refused(api.get(path, params={name: str(value)}), name)


@pytest.mark.parametrize("value", HUGE)
@pytest.mark.parametrize(("method", "template"), INT_PATHS)
def test_huge_integer_ids_are_a_400_naming_the_id(
    api: TestClient, method: str, template: str, value: int
) -> None:
    refused(api.request(method, template.format(value)), "_id")


@pytest.mark.parametrize("value", [*HUGE, "1e400", "-1", "NaN", "0x10", "1" * 5000, "\x00"])
def test_a_huge_or_bad_last_event_id_is_a_400(api: TestClient, value: Any) -> None:
    refused(api.get("/api/notifications/stream", headers={"Last-Event-ID": str(value)}), "Last-Event-ID")
    refused(api.get("/api/notifications/stream", params={"last_event_id": str(value)}), "Last-Event-ID")


@pytest.mark.parametrize("value", HUGE)
@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}, "max_tokens"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}, "seed"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}, "n"),
        ("/api/memories", {"text": "n"}, "metadata.n"),
        ("/api/notifications", {"title": "n"}, "data.n"),
        ("/api/skills/digest/run", {}, "args.limit"),
        ("/api/skills/seuss/run", {}, "args.count"),
        ("/api/schedules", {"skill": "digest", "schedule": "hourly"}, "args.limit"),
    ],
)
def test_huge_integers_in_bodies_are_never_a_500(
    api: TestClient, path: str, body: dict[str, Any], field: str, value: int
) -> None:
    not_5xx(api.post(path, json=set_at(body, field, value)))


# -- path-like ids ------------------------------------------------------------------------------------------------

ID_ROUTES = [
    ("GET", "/api/conversations/{}"),
    ("DELETE", "/api/conversations/{}"),
    ("GET", "/api/memories/{}"),
    ("DELETE", "/api/memories/{}"),
    ("GET", "/api/schedules/{}"),
    ("GET", "/api/schedules/{}/runs"),
    ("POST", "/api/schedules/{}/pause"),
    ("POST", "/api/schedules/{}/resume"),
    ("POST", "/api/schedules/{}/run"),
    ("DELETE", "/api/schedules/{}"),
    ("POST", "/api/skills/{}/run"),
    ("GET", "/api/feeds/{}"),
    ("GET", "/api/notifications/{}"),
    ("GET", "/static/{}"),
]


@pytest.mark.parametrize("value", PATH_LIKE)
@pytest.mark.parametrize(("method", "template"), ID_ROUTES)
def test_path_like_ids_find_nothing(api: TestClient, method: str, template: str, value: str) -> None:
    r = api.request(method, template.format(value))
    assert 400 <= r.status_code < 500, f"{r.status_code}: {r.text[:300]}"
    assert "root:" not in r.text and "[fonts]" not in r.text  # /etc/passwd, win.ini


# -- bodies: not UTF-8, nested 10,000 deep ------------------------------------------------------------------------

JSON_ROUTES: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": "hi"}]},
        ["messages.0.content", "model", "conversation_id", "stop"],
    ),
    ("/api/memories", {"text": "hello"}, ["text", "source", "conversation_id", "metadata.k"]),
    ("/api/memories/batch", {"memories": [{"text": "hello"}]}, ["memories.0.text", "memories.0.source"]),
    ("/api/notifications", {"title": "t"}, ["title", "body", "source", "data.k"]),
    ("/api/feeds", {"url": "https://feed.example/rss.xml", "refresh": False}, ["url", "title"]),
    (
        "/api/schedules",
        {"skill": "time", "schedule": "every 15 minutes"},
        ["skill", "schedule", "timezone", "args.tz"],
    ),
    ("/api/skills/time/run", {"args": {}}, ["timezone", "args.tz"]),
]
TEXT_FIELDS = [(path, body, field) for path, body, fields in JSON_ROUTES for field in fields]


def set_at(body: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A copy of ``body`` with ``value`` at "a.0.b" (dicts created, list items replaced)."""
    out = copy.deepcopy(body)
    node: Any = out
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return out


@pytest.mark.parametrize(
    "raw", [b'{"x": "\xff\xfe"}', b"\xef\xbb\xbf\xc3\x28", b'{"t": "\xed\xa0\x80"}', b"\x80" * 100]
)
@pytest.mark.parametrize("path", [p for p, _, _ in JSON_ROUTES])
def test_a_body_that_is_not_utf8_is_a_400_naming_the_body(api: TestClient, path: str, raw: bytes) -> None:
    refused(api.post(path, content=raw, headers={"Content-Type": "application/json"}), "body", "UTF-8")


@pytest.mark.parametrize(
    "nested",
    ["[" * 10_000 + "]" * 10_000, '{"a":' * 10_000 + "1" + "}" * 10_000, "[" * 10_000],
    ids=["arrays", "objects", "unclosed"],
)
@pytest.mark.parametrize(("path", "body", "field"), [(p, b, f[0]) for p, b, f in JSON_ROUTES])
def test_json_nested_10000_deep_is_a_400(
    api: TestClient, path: str, body: dict[str, Any], field: str, nested: str
) -> None:
    import json

    text = json.dumps(set_at(body, field, "HOLE")).replace('"HOLE"', nested)
    r = api.post(path, content=text.encode(), headers={"Content-Type": "application/json"})
    refused(r, "body")


# -- every text field: NUL, lone surrogate, 1,000,000 characters -------------------------------------------------


@pytest.mark.parametrize(("path", "body", "field"), TEXT_FIELDS)
def test_nul_bytes_in_text_fields_are_never_a_500(
    api: TestClient, path: str, body: dict[str, Any], field: str
) -> None:
    for value in ("\x00", "a\x00b", "\x00" * 1000):
        not_5xx(api.post(path, json=set_at(body, field, value)))


@pytest.mark.parametrize(("path", "body", "field"), TEXT_FIELDS)
def test_a_lone_surrogate_in_a_text_field_is_a_400_naming_it(
    api: TestClient, path: str, body: dict[str, Any], field: str
) -> None:
    import json

    text = json.dumps(set_at(body, field, "SURROGATE")).replace("SURROGATE", "a\\ud800b")
    r = api.post(path, content=text.encode(), headers={"Content-Type": "application/json"})
    refused(r, field, "surrogate")
    pair = json.dumps(set_at(body, field, "PAIR")).replace("PAIR", "\\ud83d\\ude00")  # a real emoji: fine
    not_5xx(api.post(path, content=pair.encode(), headers={"Content-Type": "application/json"}))


@pytest.mark.parametrize(("path", "body", "field"), TEXT_FIELDS)
def test_a_million_characters_in_a_text_field_is_never_a_500(
    api: TestClient, path: str, body: dict[str, Any], field: str
) -> None:
    not_5xx(api.post(path, json=set_at(body, field, LONG)))


QUERY_TEXT = [
    ("/api/memories/search", {"q": "boiler"}, "q"),
    ("/api/memories/search", {"q": "boiler"}, "source"),
    ("/api/memories/search", {"q": "boiler"}, "conversation_id"),
    ("/api/memories/search", {"q": "boiler"}, "where"),
    ("/api/memories/search", {"q": "boiler"}, "since"),
    ("/api/memories/search", {"q": "boiler"}, "mode"),
    ("/api/memories", {}, "source"),
    ("/api/memories", {}, "conversation_id"),
    ("/api/memories", {}, "until"),
]


@pytest.mark.parametrize(
    "value", ["\x00", "a\x00b", "y" * 20_000, "k=" + "\x00" * 50, "0001-01-01T00:00:00+14:00"]
)
@pytest.mark.parametrize(("path", "params", "name"), QUERY_TEXT)
def test_hostile_query_text_is_never_a_500(
    api: TestClient, path: str, params: dict[str, str], name: str, value: str
) -> None:
    not_5xx(api.get(path, params={**params, name: value}))


@pytest.mark.parametrize(
    "value",
    ["%C0%80", "%E2%80%AE%00", "%ED%A0%80", "z" * 20_000],
    ids=["overlong-nul", "rlo-nul", "surrogate", "long"],
)
@pytest.mark.parametrize(("method", "template"), ID_ROUTES)
def test_hostile_text_ids_are_never_a_500(api: TestClient, method: str, template: str, value: str) -> None:
    not_5xx(api.request(method, template.format(value)))


def test_the_daemon_still_answers_after_all_of_it(api: TestClient) -> None:
    assert api.get("/healthz").status_code == 200
    hits = api.get("/api/memories/search", params={"q": "boiler"}).json()["data"]
    assert hits and hits[0]["text"] == "The boiler was serviced in March"


@pytest.mark.parametrize(
    "name", ["America", "Europe/", "posix", "x" * 5000, "Europe/../Europe/Berlin", "\x00"]
)
def test_get_zone_refuses_directories_and_paths_with_unknown_timezone(name: str) -> None:
    from assistant.config import ConfigError
    from assistant.core.localtime import UnknownTimezone, get_zone, zone_for_place

    with pytest.raises(UnknownTimezone):
        get_zone(name)
    assert zone_for_place(name + "/x") is None
    with pytest.raises(ConfigError) as info:
        load_settings(None, timezone=name)
    assert str(info.value).startswith("timezone: ") and "\n" not in str(info.value)
