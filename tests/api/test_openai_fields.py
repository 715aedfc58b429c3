"""Every field an OpenAI client may send to /v1/chat/completions is honoured or refused by name (issue 24).

Never silently ignored: an unknown top-level field is a 400 naming it, a known field the daemon cannot honour
(``logprobs``, ``logit_bias``, ``n`` > 1, audio, images, ...) is a 400 naming it, and the cheap ones are
honoured (penalties reach the sampler) or accepted with no effect as docs/openai-api.md says.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi.testclient import TestClient

from assistant.api.chat_request import ACCEPTED_NO_EFFECT, REFUSED, ChatRequest
from assistant.app import create_app
from assistant.config import Settings
from assistant.services import build_services
from tests.fakes import FakeLLM, FixedClock
from tests.server import serve_app

DOC = Path(__file__).resolve().parents[2] / "docs" / "openai-api.md"
USER = [{"role": "user", "content": "hi"}]




@pytest.fixture
def llm() -> FakeLLM:
    return FakeLLM()


@pytest.fixture
def api(settings: Settings, llm: FakeLLM) -> Iterator[TestClient]:
    with TestClient(create_app(build_services(settings, clock=FixedClock(), llm=llm))) as c:
        yield c


def post(api: TestClient, **body: Any) -> Any:
    return api.post("/v1/chat/completions", json={"messages": USER, **body})


def assert_refused(r: Any, *names: str) -> str:
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "code"}
    for name in names:
        assert name in err["message"], err["message"]
    return str(err["message"])


def test_an_unknown_top_level_field_is_a_400_naming_it(api: TestClient) -> None:
    message = assert_refused(post(api, frobnicate=1, top_k=40), "frobnicate", "top_k")
    assert "docs/openai-api.md" in message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n", 2),
        ("logprobs", True),
        ("top_logprobs", 3),
        ("logit_bias", {"50256": -100}),
        ("modalities", ["text", "audio"]),
        ("audio", {"voice": "alloy", "format": "wav"}),
        ("prediction", {"type": "content", "content": "x"}),
        ("reasoning_effort", "low"),
        ("web_search_options", {}),
        ("verbosity", "low"),
        ("functions", [{"name": "f", "parameters": {}}]),
        ("function_call", "auto"),
    ],
)
def test_a_field_that_cannot_be_honoured_is_refused_by_name(
    api: TestClient, llm: FakeLLM, field: str, value: object
) -> None:
    assert_refused(post(api, **{field: value}), field)
    assert llm.params == []  # refused before the model


@pytest.mark.parametrize(
    "body",
    [
        {"user": "someone", "metadata": {"a": "b"}, "store": False, "service_tier": "auto"},
        {"prompt_cache_key": "k", "safety_identifier": "s"},
        {"n": 1, "logprobs": False, "top_logprobs": 0, "logit_bias": {}, "modalities": ["text"]},
        {"n": None, "logprobs": None, "audio": None, "prediction": None, "tools": None, "functions": None},
        {"parallel_tool_calls": True, "response_format": {"type": "text"}},
        {"stream_options": {"include_usage": True, "include_obfuscation": False}, "stream": True},
    ],
)
def test_fields_accepted_with_no_effect(api: TestClient, body: dict[str, Any]) -> None:
    r = post(api, **body)
    assert r.status_code == 200, r.text


def test_penalties_reach_the_sampler(api: TestClient, llm: FakeLLM) -> None:
    assert post(api, presence_penalty=0.5, frequency_penalty=-0.25).status_code == 200
    assert (llm.params[-1].presence_penalty, llm.params[-1].frequency_penalty) == (0.5, -0.25)
    assert post(api).status_code == 200
    assert (llm.params[-1].presence_penalty, llm.params[-1].frequency_penalty) == (0.0, 0.0)
    assert_refused(post(api, presence_penalty=2.5), "presence_penalty")


def test_the_message_an_sdk_echoes_back_is_accepted(api: TestClient) -> None:
    """``messages.append(response.choices[0].message.model_dump())``: the nulls an SDK message carries."""
    echoed = {
        "role": "assistant", "content": "Hello.", "refusal": None, "annotations": [], "audio": None,
        "function_call": None, "tool_calls": None, "name": "bot",
    }  # fmt: skip
    r = api.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "hi", "name": "me"}, echoed, *USER]},
    )
    assert r.status_code == 200, r.text


def test_message_fields_that_cannot_be_honoured_are_refused(api: TestClient) -> None:
    def with_message(**extra: Any) -> Any:
        return api.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "x", **extra}]}
        )

    assert_refused(with_message(colour="red"), "colour")
    assert_refused(with_message(audio={"id": "a1"}), "audio")
    image = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
    assert_refused(
        api.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": image}]}), "image_url"
    )
    sound = [{"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]
    assert_refused(
        api.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": sound}]}),
        "input_audio",
    )


def test_the_official_client_sees_a_refused_field_by_name(settings: Settings) -> None:
    with serve_app(create_app(build_services(settings, clock=FixedClock(), llm=FakeLLM()))) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused")
        with pytest.raises(openai.BadRequestError) as err:
            client.chat.completions.create(model="any", messages=USER, logprobs=True)  # type: ignore[arg-type]
        assert "logprobs" in str(err.value)
        with pytest.raises(openai.BadRequestError) as err:
            client.chat.completions.create(model="any", messages=USER, extra_body={"mirostat": 2})  # type: ignore[arg-type]
        assert "mirostat" in str(err.value)
        r = client.chat.completions.create(
            model="any",
            messages=USER,
            user="u1",
            metadata={"k": "v"},
            store=False,
            presence_penalty=0.1,  # type: ignore[arg-type]
        )
        assert r.choices[0].message.content == "Hello from the fake model."


def test_the_docs_table_names_every_field() -> None:
    """docs/openai-api.md's table lists every request field, and says which are refused or have no effect."""
    rows = {
        m.group(1): m.group(2).strip()
        for m in re.finditer(r"^\| `(\w+)` \| ([^|]+)\|", DOC.read_text(encoding="utf-8"), re.MULTILINE)
    }
    fields = set(ChatRequest.model_fields)
    assert fields <= set(rows), sorted(fields - set(rows))
    for name in REFUSED:
        assert rows[name].startswith("refused"), (name, rows[name])
    for name in ACCEPTED_NO_EFFECT:
        assert rows[name].startswith("accepted, no effect"), (name, rows[name])


@pytest.mark.parametrize("value", ["maybe", 3, [], {"on": True}, "<|im_start|>system"])
def test_the_daemons_own_switches_refuse_what_is_not_a_yes_or_no(api: TestClient, value: Any) -> None:
    for name in ("skill_choice", "memory"):
        assert_refused(post(api, **{name: value}), name)
