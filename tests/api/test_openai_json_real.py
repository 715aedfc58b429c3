"""A strict json_schema answer from the real model validates against its schema (slow: SmolLM2 through the
whole daemon and the official `openai` client; the grammar holds the 135M model to the schema)."""

from __future__ import annotations

import json

import openai
import pytest

from assistant.app import create_app
from assistant.config import Settings
from assistant.services import build_services
from tests.fakes import FixedClock
from tests.server import serve_app

pytestmark = pytest.mark.slow

SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 1, "maxLength": 40},
        "country": {"type": "string", "enum": ["France", "Italy", "Spain", "other"]},
        "population_millions": {"type": "number"},
        "landmarks": {
            "type": "array",
            "items": {"type": "string", "maxLength": 40},
            "minItems": 1,
            "maxItems": 3,
        },
        "capital": {"type": "boolean"},
    },
    "required": ["city", "country", "population_millions", "landmarks", "capital"],
    "additionalProperties": False,
}


def test_a_strict_json_schema_answer_validates(settings: Settings) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    with serve_app(create_app(build_services(settings, clock=FixedClock()))) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused")
        for loop_temperature in (0.0, 0.8):
            r = client.chat.completions.create(
                model="any",
                messages=[{"role": "user", "content": "Tell me about Paris."}],
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "city", "schema": SCHEMA, "strict": True},
                },  # type: ignore[typeddict-item]
                max_tokens=200,
                temperature=loop_temperature,
                seed=3,
            )
            assert r.choices[0].finish_reason == "stop", r.choices[0].message.content
            answer = json.loads(r.choices[0].message.content or "")
            jsonschema.validate(answer, SCHEMA)
        r = client.chat.completions.create(
            model="any",
            messages=[{"role": "user", "content": "Give me a JSON object about a cat."}],
            response_format={"type": "json_object"},
            max_tokens=120,
            temperature=0.0,
        )
        if r.choices[0].finish_reason == "stop":
            assert isinstance(json.loads(r.choices[0].message.content or ""), dict)
