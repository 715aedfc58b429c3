"""``parallel_tool_calls: false`` and a named ``tool_choice`` on the default bundled model (qwen0.5b), with the
official ``openai`` client, plain and streamed, as docs/openai-api.md says (slow: the real daemon of
tests/api/conftest.py). A question that wants two calls gets one with ``parallel_tool_calls: false``; a named
tool is the only one called, whatever the question asks."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.daemon import Daemon

pytestmark = pytest.mark.slow


def tool(name: str, description: str) -> dict[str, Any]:
    parameters = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    }
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": parameters},
    }


WEATHER = tool("get_weather", "The weather now in a city")
TIME = tool("get_time", "The local time in a city")
TWO_CITIES = [{"role": "user", "content": "What is the weather in Oslo and in Paris?"}]
NAMED_TIME = {"type": "function", "function": {"name": "get_time"}}


def calls_of(client: openai.OpenAI, stream: bool, **body: Any) -> tuple[str | None, list[tuple[str, str]]]:
    """The finish reason and the (name, arguments) of every call, from a plain or a streamed answer."""
    common: dict[str, Any] = {"model": "any", "temperature": 0.0, "max_tokens": 120, **body}
    if not stream:
        r = client.chat.completions.create(**common)
        choice = r.choices[0]
        return choice.finish_reason, [
            (c.function.name, c.function.arguments)  # type: ignore[union-attr]
            for c in choice.message.tool_calls or []
        ]
    calls: dict[int, list[str]] = {}
    finish = None
    for chunk in client.chat.completions.create(stream=True, **common):
        if not chunk.choices:
            continue
        for tc in chunk.choices[0].delta.tool_calls or []:
            entry = calls.setdefault(tc.index, ["", ""])
            entry[0] += (tc.function.name or "") if tc.function else ""
            entry[1] += (tc.function.arguments or "") if tc.function else ""
        finish = chunk.choices[0].finish_reason or finish
    return finish, [(n, a) for n, a in calls.values()]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_parallel_tool_calls_false_and_a_named_tool_choice(default_daemon: Daemon, stream: bool) -> None:
    client = openai.OpenAI(base_url=default_daemon.url + "/v1", api_key="unused")
    for extra in ({"tool_choice": "auto"}, {"tool_choice": "required"}):
        finish, calls = calls_of(
            client, stream, messages=TWO_CITIES, tools=[WEATHER], parallel_tool_calls=False, **extra
        )
        assert finish == "tool_calls" and len(calls) == 1, (extra, calls)
        assert calls[0][0] == "get_weather" and set(json.loads(calls[0][1])) == {"city"}
    for parallel in (True, False):
        finish, calls = calls_of(
            client, stream, messages=TWO_CITIES, tools=[WEATHER, TIME], tool_choice=NAMED_TIME,
            parallel_tool_calls=parallel,
        )  # fmt: skip
        assert finish == "tool_calls" and calls and {name for name, _ in calls} == {"get_time"}, calls
        assert all(set(json.loads(arguments)) == {"city"} for _, arguments in calls)
        assert parallel or len(calls) == 1
