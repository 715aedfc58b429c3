"""response_format (issue 24): json_object and json_schema held to a grammar, a schema the grammar cannot
enforce refused by name, the remote backend passing response_format on. Fakes here; the real model's answer
is validated against its schema in api/test_openai_json_real.py."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi.testclient import TestClient

from assistant.app import create_app
from assistant.config import Settings
from assistant.llm.json_grammar import UnsupportedSchema, check_schema, schema_grammar
from assistant.llm.remote import RemoteBackend
from assistant.llm.types import ChatMessage, GenerationParams, collect
from assistant.services import build_services
from tests.fakes import FakeLLM, FixedClock
from tests.memory_fakes import memory_services
from tests.server import serve_app

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "the person's name"},
        "age": {"type": "integer"},
        "pets": {"type": "array", "items": {"type": "string", "enum": ["cat", "dog"]}, "maxItems": 3},
    },
    "required": ["name", "age", "pets"],
    "additionalProperties": False,
}
STRICT = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}}
USER = [{"role": "user", "content": "Describe Ann, 31, who has a cat."}]


@pytest.fixture
def llm() -> FakeLLM:
    return FakeLLM('{"name": "Ann", "age": 31, "pets": ["cat"]}')


@pytest.fixture
def api(settings: Settings, llm: FakeLLM) -> Iterator[TestClient]:
    with TestClient(create_app(build_services(settings, clock=FixedClock(), llm=llm))) as c:
        yield c


def test_json_schema_reaches_the_model_as_a_grammar_and_an_instruction(
    api: TestClient, llm: FakeLLM
) -> None:
    r = api.post("/v1/chat/completions", json={"messages": USER, "response_format": STRICT})
    assert r.status_code == 200, r.text
    assert json.loads(r.json()["choices"][0]["message"]["content"])["name"] == "Ann"
    params = llm.params[-1]
    assert params.grammar is not None and '"\\"pets\\""' in params.grammar
    assert json.loads(params.response_format or "") == STRICT
    system = llm.prompts[-1][0]
    assert system.role == "system" and '"additionalProperties": false' in system.content


def test_json_object(api: TestClient, llm: FakeLLM) -> None:
    r = api.post("/v1/chat/completions", json={"messages": USER, "response_format": {"type": "json_object"}})
    assert r.status_code == 200, r.text
    assert llm.params[-1].grammar is not None and "root ::= object" in llm.params[-1].grammar
    assert "JSON object" in llm.prompts[-1][0].content


def test_text_format_sets_no_grammar(api: TestClient, llm: FakeLLM) -> None:
    assert (
        api.post(
            "/v1/chat/completions", json={"messages": USER, "response_format": {"type": "text"}}
        ).status_code
        == 200
    )
    assert llm.params[-1].grammar is None and llm.params[-1].response_format is None


@pytest.mark.parametrize(
    ("schema", "named"),
    [
        ({"type": "integer", "minimum": 0}, "minimum"),
        ({"type": "object", "properties": {"n": {"type": "number", "multipleOf": 2}}}, "/properties/n"),
        ({"oneOf": [{"type": "string"}, {"type": "integer"}]}, "oneOf"),
        ({"type": "string", "format": "email"}, "email"),
        ({"type": "string", "pattern": "^a$"}, "pattern"),
        ({"type": "object", "properties": {"a": True}}, "/properties/a"),
        ({"$ref": "https://example.com/s.json"}, "$ref"),
        ({"type": "object", "patternProperties": {"^x": {}}}, "patternProperties"),
        ({"type": "objekt"}, "objekt"),
        ({"enum": ['say "hi"']}, "quote"),
    ],
)
def test_a_schema_feature_the_grammar_cannot_enforce_is_a_400_naming_it(
    api: TestClient, llm: FakeLLM, schema: dict[str, Any], named: str
) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}}
    r = api.post("/v1/chat/completions", json={"messages": USER, "response_format": fmt})
    assert r.status_code == 400, r.text
    assert named in r.json()["error"]["message"]
    assert r.json()["error"]["code"] == "unsupported_schema"
    assert llm.params == []


def test_malformed_response_formats_are_400s(api: TestClient) -> None:
    for fmt in (
        {"type": "json_schema"},
        {"type": "yaml"},
        {"type": "json_schema", "json_schema": {"schema": {}}},
    ):
        r = api.post("/v1/chat/completions", json={"messages": USER, "response_format": fmt})
        assert r.status_code == 400, (fmt, r.text)


def test_supported_schemas_become_grammars() -> None:
    defs = {
        "$defs": {"pet": {"type": "string", "enum": ["cat", "dog"]}},
        "type": "array",
        "items": {"$ref": "#/$defs/pet"},
    }
    for schema in (PERSON, defs, {}, {"type": ["string", "null"]}, {"anyOf": [{"type": "integer"}, {"const": "x"}]},
                   {"type": "string", "format": "date-time"}, {"type": "string", "minLength": 1, "maxLength": 5},
                   {"type": "object", "additionalProperties": {"type": "integer"}}):  # fmt: skip
        grammar = schema_grammar(schema)
        assert "root ::=" in grammar
        assert 'char ::= [^"\\\\] |' not in grammar  # raw control characters are kept out of strings
    with pytest.raises(UnsupportedSchema, match="more than"):
        check_schema({"type": "array", "prefixItems": [{"type": "null"}] * 2_001})


def test_a_rule_phrase_goes_to_the_model_when_json_is_asked_for(tmp_path: Path) -> None:
    """A rule or a skill answers in prose: with a response_format, the model answers (held to JSON)."""
    llm = FakeLLM('{"noted": true}')
    with TestClient(create_app(memory_services(tmp_path, FixedClock(), llm))) as c:
        said = [{"role": "user", "content": "Remember that the spare key is under the mat"}]
        r = c.post(
            "/v1/chat/completions", json={"messages": said, "response_format": {"type": "json_object"}}
        )
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"] == '{"noted": true}'
        assert len(llm.params) == 1
        plain = [{"role": "user", "content": "Remember that the boiler was serviced in March"}]
        assert c.post("/v1/chat/completions", json={"messages": plain}).status_code == 200
        assert len(llm.params) == 1  # without it, the rule answers


def test_the_official_client_parses_a_strict_answer(settings: Settings, llm: FakeLLM) -> None:
    with serve_app(create_app(build_services(settings, clock=FixedClock(), llm=llm))) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused")
        r = client.chat.completions.create(model="any", messages=USER, response_format=STRICT)  # type: ignore[arg-type]
        assert json.loads(r.choices[0].message.content or "") == {"name": "Ann", "age": 31, "pets": ["cat"]}


def test_the_remote_backend_passes_response_format_on() -> None:
    sent: list[dict[str, Any]] = []

    def server(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        chunk = {"choices": [{"delta": {"content": "{}"}, "finish_reason": "stop"}]}
        return httpx.Response(200, text=f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n")

    backend = RemoteBackend("http://127.0.0.1:9/v1", "m", None, 5.0)
    backend.client = httpx.Client(transport=httpx.MockTransport(server))
    params = GenerationParams(
        response_format=json.dumps(STRICT), grammar='root ::= "{}"', presence_penalty=0.5
    )
    out = collect(backend.stream_chat([ChatMessage("user", "x")], params, threading.Event()))
    assert out.text == "{}"
    assert sent[0]["response_format"] == STRICT and sent[0]["presence_penalty"] == 0.5
    assert "grammar" not in sent[0]
