"""POST /v1/embeddings from memory's embedder, in OpenAI's shape, driven by the official `openai` client
(the hashing embedder here; the real one is tested in memory/test_real.py)."""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient

from assistant.app import create_app
from assistant.config import Settings
from assistant.services import build_services
from tests.fakes import FakeLLM, FixedClock
from tests.memory_fakes import HashingEmbedder, memory_services
from tests.server import serve_app


class WindowedEmbedder(HashingEmbedder):
    """The hashing embedder with a model window, as the real embedders have (``max_tokens``)."""

    max_tokens = 12


@pytest.fixture
def base_url(tmp_path: Path) -> Iterator[str]:
    services = memory_services(tmp_path, FixedClock(), FakeLLM())
    with serve_app(create_app(services)) as url:
        yield url + "/v1"


@pytest.fixture
def api(tmp_path: Path, settings: Settings) -> Iterator[TestClient]:
    from tests.memory_fakes import memory_settings

    services = build_services(
        memory_settings(tmp_path), clock=FixedClock(), llm=FakeLLM(), embedder=WindowedEmbedder()
    )
    with TestClient(create_app(services)) as c:
        yield c


def test_the_official_client_embeds_a_string_and_a_list(base_url: str) -> None:
    client = openai.OpenAI(base_url=base_url, api_key="unused")
    one = client.embeddings.create(model="any", input="the spare key is under the mat")
    assert one.object == "list" and len(one.data) == 1
    vec = one.data[0].embedding
    assert len(vec) == HashingEmbedder.dim and math.isclose(sum(x * x for x in vec), 1.0, rel_tol=1e-4)
    assert one.usage.prompt_tokens == one.usage.total_tokens == 7
    assert one.model  # the embedder's name, whatever the client asked for
    many = client.embeddings.create(model="any", input=["spare key", "boiler service", "spare key"])
    assert [d.index for d in many.data] == [0, 1, 2]
    assert many.data[0].embedding == many.data[2].embedding != many.data[1].embedding
    # The client asks for base64 by default and decodes it: the floats are the same as the plain ones.
    plain = client.embeddings.create(model="any", input="spare key", encoding_format="float")
    assert plain.data[0].embedding == pytest.approx(many.data[0].embedding, abs=1e-6)


def test_base64_is_little_endian_float32(api: TestClient) -> None:
    r = api.post("/v1/embeddings", json={"input": "spare key", "encoding_format": "base64"})
    assert r.status_code == 200, r.text
    raw = base64.b64decode(r.json()["data"][0]["embedding"])
    floats = struct.unpack(f"<{len(raw) // 4}f", raw)
    plain = api.post("/v1/embeddings", json={"input": "spare key"}).json()["data"][0]["embedding"]
    assert list(floats) == pytest.approx(plain, abs=1e-6)


def refused(r: Any, *names: str) -> None:
    assert r.status_code == 400, r.text
    message = r.json()["error"]["message"]
    for name in names:
        assert name in message, message


def test_what_cannot_be_honoured_is_refused_by_name(api: TestClient) -> None:
    refused(api.post("/v1/embeddings", json={"input": "x", "dimensions": 64}), "dimensions", "384")
    assert api.post("/v1/embeddings", json={"input": "x", "dimensions": 384}).status_code == 200
    refused(api.post("/v1/embeddings", json={"input": [101, 2023]}), "token")
    refused(api.post("/v1/embeddings", json={"input": [[101, 2023]]}), "token")
    refused(api.post("/v1/embeddings", json={"input": "x", "encoding_format": "int8"}), "encoding_format")
    refused(api.post("/v1/embeddings", json={"input": "x", "mystery": 1}), "mystery")
    refused(api.post("/v1/embeddings", json={"input": ""}), "empty")
    refused(api.post("/v1/embeddings", json={"input": []}), "input")
    refused(api.post("/v1/embeddings", json={}), "input")


def test_size_limits(api: TestClient) -> None:
    from assistant.api.embeddings import MAX_INPUT_CHARS, MAX_INPUTS

    refused(api.post("/v1/embeddings", json={"input": ["a"] * (MAX_INPUTS + 1)}), str(MAX_INPUTS))
    refused(api.post("/v1/embeddings", json={"input": "a " * MAX_INPUT_CHARS}), str(MAX_INPUT_CHARS))
    # Longer than the embedder's window: refused by index, not cut silently.
    refused(api.post("/v1/embeddings", json={"input": ["short", "w " * 20]}), "input[1]", "20 tokens", "10")
    ok = api.post("/v1/embeddings", json={"input": ["w " * 10], "user": "u"})
    assert ok.status_code == 200, ok.text


def test_memory_off_is_a_503_saying_how_to_turn_it_on(client: TestClient) -> None:
    r = client.post("/v1/embeddings", json={"input": "x"})
    assert r.status_code == 503
    assert "[memory] enabled = true" in r.json()["error"]["message"]
