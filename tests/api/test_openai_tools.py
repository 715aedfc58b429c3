"""Function calling in OpenAI's shape (issue 24) with the official `openai` client and a fake model: a call and
its result round trip, streamed calls, the grammar and the tool block the model gets, refusals by name. The
real model's calls are in api/test_openai_tools_real.py."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from assistant.app import create_app
from assistant.config import Settings
from assistant.llm.remote import RemoteBackend
from assistant.llm.tool_calls import Tool, parse_calls, tools_grammar, with_tools
from assistant.llm.types import ChatMessage, GenerationParams, collect
from assistant.services import build_services
from tests.fakes import FakeLLM, FixedClock
from tests.server import serve_app

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather now in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def reply(messages: Any) -> str:
    """A call first; once a tool's result is in the prompt, an answer from it."""
    last = messages[-1].content
    return "It is 18 degrees in Paris." if "<tool_response>" in last else CALL


@pytest.fixture
def llm() -> FakeLLM:
    return FakeLLM(reply)


@pytest.fixture
def client(settings: Settings, llm: FakeLLM) -> Iterator[openai.OpenAI]:
    with serve_app(create_app(build_services(settings, clock=FixedClock(), llm=llm))) as url:
        yield openai.OpenAI(base_url=url + "/v1", api_key="unused")


def test_a_call_and_its_result_round_trip(client: openai.OpenAI, llm: FakeLLM) -> None:
    r = client.chat.completions.create(model="any", messages=ASK, tools=[WEATHER])  # type: ignore[arg-type,list-item]
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.id.startswith("call_") and call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    # What the backend got: the tools (it shows them to the model its own way) and a grammar naming the tool.
    offered = json.loads(llm.params[-1].tools or "")
    assert offered == {"tools": [WEATHER], "tool_choice": "auto"}
    assert llm.params[-1].grammar is not None and "get_weather" in llm.params[-1].grammar

    history = [*ASK, choice.message.model_dump(exclude_none=True)]
    history.append({"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 18}'})
    # A plain OpenAI client resends the whole history: the stored conversation (its call) goes on.
    r2 = client.chat.completions.create(model="any", messages=history, tools=[WEATHER])  # type: ignore[arg-type,list-item]
    assert r2.model_extra["conversation_id"] == r.model_extra["conversation_id"]  # type: ignore[index]
    assert r2.choices[0].finish_reason == "stop"
    assert r2.choices[0].message.content == "It is 18 degrees in Paris."
    prompt = llm.prompts[-1]
    assert (
        prompt[-1].role == "user"
        and '<tool_response>\n{"temp_c": 18}\n</tool_response>' in prompt[-1].content
    )
    assert any(m.role == "assistant" and '"get_weather"' in m.content for m in prompt)  # the stored call


def test_streamed_calls(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="any", messages=ASK, tools=[WEATHER], stream=True)  # type: ignore[arg-type,list-item]
    calls: dict[int, dict[str, str]] = {}
    finish, text = None, ""
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        text += delta.content or ""
        for tc in delta.tool_calls or []:
            entry = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] += tc.id or ""
            entry["name"] += tc.function.name or "" if tc.function else ""
            entry["arguments"] += tc.function.arguments or "" if tc.function else ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls" and text == ""
    assert calls[0]["name"] == "get_weather" and json.loads(calls[0]["arguments"]) == {"city": "Paris"}


def test_a_bare_call_object_streams_as_a_call(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.reply = '{"name": "get_weather", "arguments": {"city": "Oslo"}}'
    stream = client.chat.completions.create(model="any", messages=ASK, tools=[WEATHER], stream=True)  # type: ignore[arg-type,list-item]
    chunks = [c for c in stream if c.choices]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert not "".join(c.choices[0].delta.content or "" for c in chunks)
    (call,) = [tc for c in chunks for tc in c.choices[0].delta.tool_calls or []]
    assert call.function and json.loads(call.function.arguments or "") == {"city": "Oslo"}


def test_text_answers_stream_as_text_when_tools_are_offered(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.reply = "<b> is not a call, and neither is this."
    stream = client.chat.completions.create(model="any", messages=ASK, tools=[WEATHER], stream=True)  # type: ignore[arg-type,list-item]
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert "".join(pieces) == "<b> is not a call, and neither is this."


def test_tool_choice_none_offers_no_tools(client: openai.OpenAI, llm: FakeLLM) -> None:
    llm.reply = "No tools."
    r = client.chat.completions.create(model="any", messages=ASK, tools=[WEATHER], tool_choice="none")  # type: ignore[arg-type,list-item]
    assert r.choices[0].message.content == "No tools."
    assert llm.params[-1].grammar is None and llm.params[-1].tools is None


def test_refusals_name_what_is_wrong(client: openai.OpenAI) -> None:
    bad_schema = json.loads(json.dumps(WEATHER))
    bad_schema["function"]["parameters"]["properties"]["days"] = {"type": "integer", "minimum": 1}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"tool_choice": "required"}, "needs tools"),
        ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "nope"),
        ({"tools": [bad_schema]}, "minimum"),
        ({"tools": [WEATHER, WEATHER]}, "same name"),
        ({"tools": [WEATHER], "response_format": {"type": "json_object"}}, "response_format"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "tool_call_id"),
    ]
    for extra, named in cases:
        body = {"messages": ASK, **extra}
        with pytest.raises(openai.BadRequestError) as err:
            client.chat.completions.create(model="any", **body)  # type: ignore[call-overload]
        assert named in str(err.value), (extra, str(err.value))


def test_the_grammar_allows_text_only_with_auto() -> None:
    tools = [Tool("get_weather", "", WEATHER["function"]["parameters"]), Tool("get_time", "", {})]  # type: ignore[index]
    auto = tools_grammar(tools, "auto")
    assert auto.startswith("root ::= calls | call-json | free") and "get_time" in auto
    assert "free ::= [^<{" in auto  # text that could be a call's start is a call or nothing
    assert tools_grammar(tools, "required").startswith("root ::= calls\n")
    named = tools_grammar(tools, "get_time", parallel=False)
    assert "get_weather" not in named and "calls ::= call\n" in named


def test_parse_calls() -> None:
    two = CALL + "\n" + CALL.replace("Paris", "Rome")
    calls = parse_calls(two)
    assert calls is not None and [json.loads(c.arguments)["city"] for c in calls] == ["Paris", "Rome"]
    assert len({c.id for c in calls}) == 2
    assert parse_calls("Sunny.") is None
    (bare,) = parse_calls(' {"name": "get_weather", "arguments": {"city": "Oslo"}}') or []
    assert bare.name == "get_weather" and json.loads(bare.arguments) == {"city": "Oslo"}
    assert parse_calls('{"city": "Oslo"}') is None  # JSON that is not a call is text
    assert parse_calls('<tool_call>\n{"name": "get_weather", "argu') is None  # cut by max_tokens: text


def test_the_tool_block_follows_the_system_text_as_qwen_writes_it() -> None:
    offered = json.dumps({"tools": [WEATHER], "tool_choice": "auto"})
    msgs = with_tools([ChatMessage("system", "Be brief."), ChatMessage("user", "hi")], offered)
    assert msgs[0].content.startswith("Be brief.\n\n# Tools\n\nYou may call one or more functions")
    assert json.dumps(WEATHER) in msgs[0].content and msgs[1] == ChatMessage("user", "hi")
    assert with_tools([ChatMessage("user", "hi")], offered)[0].role == "system"


def test_the_remote_backend_passes_tools_on_and_reads_streamed_calls_back() -> None:
    sent: list[dict[str, Any]] = []
    pieces = [
        {"index": 0, "id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": ""}},
        {"index": 0, "function": {"arguments": '{"city": '}},
        {"index": 0, "function": {"arguments": '"Paris"}'}},
    ]

    def server(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        chunks = [{"choices": [{"delta": {"tool_calls": [p]}, "finish_reason": None}]} for p in pieces]
        chunks.append({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]})
        return httpx.Response(
            200, text="".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        )

    backend = RemoteBackend("http://127.0.0.1:9/v1", "m", None, 5.0)
    backend.client = httpx.Client(transport=httpx.MockTransport(server))
    offered = json.dumps({"tools": [WEATHER], "tool_choice": "required"})
    out = collect(
        backend.stream_chat([ChatMessage("user", "x")], GenerationParams(tools=offered), threading.Event())
    )
    assert sent[0]["tools"] == [WEATHER] and sent[0]["tool_choice"] == "required"
    calls = parse_calls(out.text)
    assert (
        calls is not None
        and calls[0].name == "get_weather"
        and json.loads(calls[0].arguments) == {"city": "Paris"}
    )
