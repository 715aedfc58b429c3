"""The real model's calls parse and match their schema (slow: SmolLM2, which has no tool format of its own,
through the whole daemon and the official `openai` client; the grammar holds it to Qwen's format)."""

from __future__ import annotations

import json

import openai
import pytest

from assistant.app import create_app
from assistant.config import Settings
from assistant.services import build_services
from tests.api.test_openai_tools import ASK, WEATHER
from tests.fakes import FixedClock
from tests.server import serve_app

pytestmark = pytest.mark.slow


def test_required_and_auto_calls_from_the_real_model(settings: Settings) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = WEATHER["function"]["parameters"]  # type: ignore[index]
    with serve_app(create_app(build_services(settings, clock=FixedClock()))) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused")
        r = client.chat.completions.create(
            model="any",
            messages=ASK,
            tools=[WEATHER],
            tool_choice="required",
            temperature=0.0,
            max_tokens=120,  # type: ignore[arg-type,list-item]
        )
        choice = r.choices[0]
        assert choice.finish_reason == "tool_calls", choice.message.content
        for call in choice.message.tool_calls or []:
            assert call.function.name == "get_weather"  # type: ignore[union-attr]
            jsonschema.validate(json.loads(call.function.arguments), schema)  # type: ignore[union-attr]
        r = client.chat.completions.create(
            model="any",
            messages=ASK,
            tools=[WEATHER],
            temperature=0.0,
            max_tokens=120,  # type: ignore[arg-type,list-item]
        )
        choice = r.choices[0]
        if choice.finish_reason == "tool_calls":
            for call in choice.message.tool_calls or []:
                jsonschema.validate(json.loads(call.function.arguments), schema)  # type: ignore[union-attr]
        else:
            assert choice.message.content and not choice.message.content.lstrip().startswith("<")
