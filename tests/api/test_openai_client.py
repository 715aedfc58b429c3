"""The official `openai` client pointed at the daemon (fake backend here; the real model in test_real_model)."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from assistant.app import create_app
from assistant.config import load_settings
from assistant.services import build_services
from tests.fakes import FakeLLM, FixedClock
from tests.server import serve_app


@pytest.fixture
def base_url(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = load_settings(
        None,
        data_dir=tmp_path,
        server={"api_token": "tok"},
        memory={"enabled": False},
        scheduler={"enabled": False},
    )
    with serve_app(
        create_app(build_services(settings, clock=FixedClock(), llm=FakeLLM("Paris is the capital.")))
    ) as url:
        yield url + "/v1"


def test_openai_client_non_streaming(base_url: str) -> None:
    client = openai.OpenAI(base_url=base_url, api_key="tok")
    r = client.chat.completions.create(
        model="any", messages=[{"role": "user", "content": "Capital of France?"}]
    )
    assert r.choices[0].message.content == "Paris is the capital."
    assert r.usage is not None and r.usage.completion_tokens == 4
    assert [m.id for m in client.models.list()] == ["fake-model"]


def test_openai_client_streaming_and_conversation(base_url: str) -> None:
    client = openai.OpenAI(base_url=base_url, api_key="tok")
    stream = client.chat.completions.create(
        model="any",
        messages=[{"role": "user", "content": "Capital of France?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, usage, cid = [], None, None
    for chunk in stream:
        cid = getattr(chunk, "conversation_id", None) or cid
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        if chunk.usage:
            usage = chunk.usage
    assert "".join(pieces) == "Paris is the capital."
    assert usage is not None and usage.completion_tokens == 4
    assert cid
    r = client.chat.completions.create(
        model="any", messages=[{"role": "user", "content": "And Italy?"}], extra_body={"conversation_id": cid}
    )
    assert r.model_extra["conversation_id"] == cid


def test_openai_client_sees_errors(base_url: str) -> None:
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=base_url, api_key="wrong").models.list()
    client = openai.OpenAI(base_url=base_url, api_key="tok")
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="any", messages=[{"role": "assistant", "content": "x"}])
    assert "last message" in str(err.value)
