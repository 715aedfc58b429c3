"""An agent framework drives the daemon end to end over loopback (issue 24): Pydantic AI's OpenAI chat model,
pointed at the daemon's /v1, defines a tool from a typed Python function, and its agent loop runs the whole
round: the model's call, the tool's result sent back as a ``role: "tool"`` message, the final answer.

Fast: a scripted fake model (the framework's loop, the call's arguments, the tool message the model reads).
Slow: the real daemon (`assistant serve`) on the default bundled model, qwen0.5b (tests/api/conftest.py).

Every connection the framework opens is checked to go to 127.0.0.1 (``loopback_only``)."""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from assistant.app import create_app
from assistant.config import Settings
from assistant.llm.types import ChatMessage
from assistant.services import Services, build_services
from tests.daemon import Daemon
from tests.fakes import FakeLLM, FixedClock
from tests.server import serve_app

pydantic_ai = pytest.importorskip(
    "pydantic_ai", reason="pydantic-ai-slim[openai] is not installed (the dev extra: pip install -e '.[dev]')"
)

# What the tool says, from code: a fact the model cannot know, so an answer holding it used the tool.
FORECAST = "Oslo: 14 degrees Celsius, light rain, wind 6 m/s"
QUESTION = "What is the weather in Oslo right now? Use the tool."


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Refuse any connection this process opens to an address that is not loopback; list the ones made."""
    made: list[str] = []
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            if not ipaddress.ip_address(host).is_loopback:
                raise AssertionError(f"the agent framework tried to reach {host}")
            made.append(host)
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return made


def weather_tool(calls: list[dict[str, Any]], *, once: bool = False) -> Any:
    """The tool, get_weather(city): a typed function the framework makes a tool of; it records its arguments.
    ``once``: the framework offers it only until it has run (its per-step ``prepare``), so the next request
    carries its result and no tools."""
    from pydantic_ai import Tool

    def get_weather(city: str) -> str:
        """The weather right now in a city.

        Args:
            city: The city's name, e.g. "Paris".
        """
        calls.append({"city": city})
        return FORECAST if "oslo" in city.lower() else f"{city}: no forecast"

    def offered_until_run(ctx: Any, tool_def: Any) -> Any:
        return None if calls else tool_def

    return Tool(get_weather, prepare=offered_until_run if once else None)


def weather_agent(base_url: str, tool: Any) -> Any:
    """An agent on the daemon at ``base_url`` with the one tool."""
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    model = OpenAIChatModel("assistant", provider=OpenAIProvider(base_url=base_url + "/v1", api_key="unused"))
    return Agent(model, tools=[tool])


def tool_calls(result: Any) -> list[Any]:
    from pydantic_ai.messages import ModelResponse, ToolCallPart

    return [
        p
        for m in result.all_messages()
        if isinstance(m, ModelResponse)
        for p in m.parts
        if isinstance(p, ToolCallPart)
    ]


# -- fast: the fake model ------------------------------------------------------------------------------


def scripted(messages: list[ChatMessage]) -> str:
    """A call first; once the tool's result is in the prompt, an answer that repeats it."""
    last = messages[-1].content
    if "<tool_response>" in last:
        return "Right now: " + last.split("<tool_response>\n", 1)[1].split("\n</tool_response>", 1)[0]
    return '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'


@pytest.fixture
def fake_services(settings: Settings) -> Services:
    return build_services(settings, clock=FixedClock(), llm=FakeLLM(scripted))


@pytest.fixture
def fake_daemon(fake_services: Services) -> Iterator[tuple[str, FakeLLM]]:
    with serve_app(create_app(fake_services)) as url:
        yield url, fake_services.llm  # type: ignore[misc]


def test_the_agent_loop_runs_through_the_daemon(
    fake_daemon: tuple[str, FakeLLM], loopback_only: list[str]
) -> None:
    url, llm = fake_daemon
    calls: list[dict[str, Any]] = []
    result = weather_agent(url, weather_tool(calls)).run_sync(QUESTION)
    assert calls == [{"city": "Oslo"}]  # the tool ran once, with the arguments the model wrote
    (call,) = tool_calls(result)
    assert call.tool_name == "get_weather" and call.args_as_dict() == {"city": "Oslo"}
    assert call.tool_call_id.startswith("call_")
    assert result.output == f"Right now: {FORECAST}"
    # Two requests: the first offered the tool (its schema from the function's signature and docstring); the
    # second carried the call and its result, which the model read in a <tool_response> block.
    assert len(llm.prompts) == 2
    offered = json.loads(llm.params[0].tools or "")
    (tool,) = offered["tools"]
    assert tool["function"]["name"] == "get_weather"
    assert tool["function"]["parameters"]["properties"]["city"]["type"] == "string"
    assert llm.prompts[1][-1] == ChatMessage("user", f"<tool_response>\n{FORECAST}\n</tool_response>")
    assert any(m.role == "assistant" and '"get_weather"' in m.content for m in llm.prompts[1])
    assert loopback_only and set(loopback_only) <= {"127.0.0.1"}


def test_the_agent_streams_through_the_daemon(
    fake_daemon: tuple[str, FakeLLM], loopback_only: list[str]
) -> None:
    """The same loop with streamed answers: the framework reads the call from ``delta.tool_calls``."""
    import anyio

    url, _ = fake_daemon
    calls: list[dict[str, Any]] = []
    agent = weather_agent(url, weather_tool(calls))

    async def run() -> str:
        async with agent.run_stream(QUESTION) as stream:
            return str(await stream.get_output())

    assert anyio.run(run) == f"Right now: {FORECAST}"
    assert calls == [{"city": "Oslo"}]


def test_a_bare_call_object_and_its_result_stay_one_conversation(
    fake_daemon: tuple[str, FakeLLM], fake_services: Services
) -> None:
    """Qwen2.5 0.5B often writes a call without its tags; the framework resends it as ``tool_calls``, which the
    model reads back as a tagged call: the stored call must match it, or every step of the loop starts a new
    conversation (and the resent calls are compared with untrusted answers of other conversations)."""
    url, llm = fake_daemon
    bare = '{"name": "get_weather", "arguments": {"city": "Oslo"}}'
    llm.reply = lambda messages: scripted(messages) if "<tool_response>" in messages[-1].content else bare
    calls: list[dict[str, Any]] = []
    result = weather_agent(url, weather_tool(calls)).run_sync(QUESTION)
    assert calls == [{"city": "Oslo"}] and result.output == f"Right now: {FORECAST}"
    (conversation,) = fake_services.conversations.list()
    turns = [t.content for t in fake_services.conversations.turns(str(conversation["id"]))]
    assert len(turns) == 4, turns  # the question, the call, the tool's result, the answer


# -- slow: the real daemon on the default bundled model --------------------------------------------------


@pytest.mark.slow
def test_an_agent_on_the_real_default_model_calls_the_tool_and_answers_from_it(
    default_daemon: Daemon, loopback_only: list[str]
) -> None:
    """The agent's answer is structured (the framework's own output tool, ``final_result``) and get_weather is
    offered until it has run. With get_weather still offered after its result, qwen0.5b calls it again with
    the same arguments at every step (temperature 0, with or without the output tool), until the framework's
    request limit; offered no tool, it writes the call out as text. The 1.5B model, or a bigger one behind
    the remote backend, is what an agent needing several steps should run on."""
    jsonschema = pytest.importorskip("jsonschema")
    from pydantic import BaseModel
    from pydantic_ai import Agent
    from pydantic_ai.settings import ModelSettings
    from pydantic_ai.usage import UsageLimits

    class Answer(BaseModel):
        """The answer to the user's question."""

        answer: str

    calls: list[dict[str, Any]] = []
    tool = weather_tool(calls, once=True)
    agent = Agent(weather_agent(default_daemon.url, tool).model, tools=[tool], output_type=Answer)
    result = agent.run_sync(
        QUESTION,
        model_settings=ModelSettings(temperature=0.0, max_tokens=120),
        usage_limits=UsageLimits(request_limit=4),
    )
    made = [c for c in tool_calls(result) if c.tool_name == "get_weather"]
    assert made and calls, result.all_messages()
    schema = tool.tool_def.parameters_json_schema
    for call in made:
        jsonschema.validate(call.args_as_dict(), schema)
        assert (
            isinstance(call.args, str) and json.loads(call.args) == call.args_as_dict()
        )  # JSON text, as sent
    assert any("oslo" in c["city"].lower() for c in calls), calls
    answer = result.output.answer
    print("agent's final answer:", answer)
    assert "14" in answer or "rain" in answer.lower(), answer
    assert set(loopback_only) <= {"127.0.0.1"}
