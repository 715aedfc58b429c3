"""The body of ``POST /v1/chat/completions`` and its translation into the orchestrator's terms.

Every field an OpenAI client may send is either honoured, accepted with no effect (``ACCEPTED_NO_EFFECT``:
bookkeeping fields such as ``user`` or ``metadata`` that change nothing in an answer), or refused with a
400 that names it (``REFUSED``: the value asks for something this daemon does not do, such as
``logprobs`` or a second choice). A field nobody knows is a 400 naming it too: nothing is silently dropped.
docs/openai-api.md holds the table (a test keeps it in step with this module).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from assistant.core.errors import BadRequest
from assistant.llm.types import ChatMessage, GenerationParams

if TYPE_CHECKING:
    from assistant.llm.tool_calls import Tool

MAX_MESSAGE_CHARS = 200_000
MAX_MESSAGES = 5_000  # a 3,000-turn history from a client that resends everything still fits
MAX_TOTAL_CHARS = 2_000_000  # all messages together; the context is fitted from the newest turn back
MAX_STOP_CHARS = 200
DOCS = "docs/openai-api.md"

# Fields that are read and change nothing (documented as "accepted, no effect").
ACCEPTED_NO_EFFECT = (
    "model", "user", "metadata", "store", "service_tier", "prompt_cache_key", "safety_identifier",
)  # fmt: skip

# Fields refused when set to anything but their "off" value: why, for the 400's message.
REFUSED: dict[str, str] = {
    "n": "only n=1 is supported: one model answers one choice at a time; send the request again for another",
    "logprobs": "logprobs is not supported: the daemon does not report token log-probabilities",
    "top_logprobs": "top_logprobs is not supported: the daemon does not report token log-probabilities",
    "logit_bias": "logit_bias is not supported: token ids differ between models; leave it out",
    "modalities": 'modalities other than ["text"] are not supported: the model reads and writes text only',
    "audio": "audio output is not supported: the model writes text only (the voice part speaks it)",
    "prediction": "prediction (predicted outputs) is not supported; leave it out",
    "reasoning_effort": "reasoning_effort is not supported: the model is not a reasoning model",
    "web_search_options": "web_search_options is not supported: the daemon does not search the web for a chat",
    "verbosity": "verbosity is not supported; ask for the length you want in the message or set max_tokens",
    "functions": "functions (the deprecated form of tools) is not supported; send tools instead",
    "function_call": "function_call (the deprecated form of tool_choice) is not supported; send tool_choice",
}


def _refused(name: str, value: object) -> bool:
    """Whether ``value`` of the field ``name`` asks for something the daemon does not do."""
    if value is None:
        return False
    if name == "n":
        return value != 1
    if name in ("logprobs", "top_logprobs"):
        return bool(value)
    if name == "logit_bias":
        return bool(value)
    if name == "modalities":
        return value != ["text"]
    return True


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")  # an image or audio part carries its own fields; refused by type
    type: str
    text: str | None = None
    refusal: str | None = None


class FunctionCallIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    arguments: str = Field("", max_length=MAX_MESSAGE_CHARS)


class ToolCallIn(BaseModel):
    """A call an assistant message made (a client sends its history back)."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=256)
    type: Literal["function"] = "function"
    function: FunctionCallIn


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = Field(None, max_length=256, description="accepted, no effect")
    # What an SDK's own message object carries when a client sends it back (``message.model_dump()``):
    # accepted while empty; a value asks for something not supported.
    refusal: str | None = Field(None, description="accepted, no effect (an assistant's refusal text)")
    annotations: list[Any] | None = Field(None, max_length=0, description="accepted when empty")
    audio: Any = Field(None, description="refused unless null: the model writes text only")
    function_call: Any = Field(None, description="refused unless null")
    tool_calls: list[ToolCallIn] | None = Field(None, max_length=64, description="an assistant's calls")
    tool_call_id: str | None = Field(None, max_length=256, description="the call a tool message answers")

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        return _no_unknown(cls, data, "a message")

    def check(self) -> None:
        for field in ("audio", "function_call"):
            if getattr(self, field) is not None:
                raise BadRequest(
                    f"a message's {field} is not supported: the daemon takes text messages only",
                    code="unsupported_parameter",
                )
        if self.tool_calls and self.role != "assistant":
            raise BadRequest("only an assistant message has tool_calls", code="invalid_message")
        if self.role == "tool" and not self.tool_call_id:
            raise BadRequest("a tool message needs the tool_call_id it answers", code="invalid_message")

    def model_text(self) -> str:
        """The message as the model reads it: a tool's result inside <tool_response>, an assistant's calls
        after its text in <tool_call> blocks (assistant.llm.tool_calls)."""
        from assistant.llm.tool_calls import call_text, response_text

        text = self.text()
        if self.role == "tool":
            return response_text(text)
        if self.tool_calls:
            calls = [call_text(c.function.name, c.function.arguments) for c in self.tool_calls]
            return "\n".join([*([text] if text else []), *calls])
        return text

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        texts = []
        for part in self.content:
            if part.type == "text":
                texts.append(part.text or "")
            elif part.type == "refusal":
                texts.append(part.refusal or "")
            else:
                raise BadRequest(
                    f"content part type {part.type!r} is not supported: the model reads text only; send text parts",
                    code="content",
                )
        return "".join(texts)


class FunctionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    description: str = Field("", max_length=4_000)
    parameters: dict[str, Any] | None = Field(None, description="a JSON schema; absent: any object")
    strict: bool | None = Field(None, description="honoured either way: the arguments are held to the schema")


class ToolIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["function"]
    function: FunctionIn


class ChosenFunction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)


class NamedToolChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["function"]
    function: ChosenFunction


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    description: str | None = Field(None, max_length=2_000)
    schema_: dict[str, Any] | None = Field(None, alias="schema", description="absent: any JSON value")
    strict: bool | None = Field(
        None, description="honoured either way: the answer is always held to the schema"
    )


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include_usage: bool = False
    include_obfuscation: bool | None = Field(None, description="accepted, no effect: nothing is padded")


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str | None = None
    messages: list[MessageIn] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2, description="absent or null: 0.7 (or the persona's)")
    top_p: float | None = Field(None, gt=0, le=1, description="absent or null: 0.95 (or the persona's)")
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    # accepted, no effect
    user: str | None = Field(None, max_length=256)
    metadata: dict[str, str] | None = Field(None, max_length=16)
    store: bool | None = None
    service_tier: str | None = Field(None, max_length=64)
    prompt_cache_key: str | None = Field(None, max_length=256)
    safety_identifier: str | None = Field(None, max_length=256)
    parallel_tool_calls: bool | None = Field(None, description="false: at most one call an answer")
    # refused unless "off" (REFUSED)
    n: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    logit_bias: dict[str, float] | None = None
    modalities: list[str] | None = Field(None, max_length=4)
    audio: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    reasoning_effort: str | None = Field(None, max_length=64)
    web_search_options: dict[str, Any] | None = None
    verbosity: str | None = Field(None, max_length=64)
    functions: list[Any] | None = None
    function_call: str | dict[str, Any] | None = None
    tools: list[ToolIn] | None = Field(None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    response_format: ResponseFormat | None = None
    # this daemon's own
    conversation_id: str | None = None
    persona: str | None = Field(None, min_length=1, max_length=64)
    memory: bool | None = Field(
        None,
        description="store this turn in memory (the daemon's own clients send true); absent: memory.remember_api_chats",
    )
    skill_choice: bool | None = Field(
        None, description="false: the model does not choose one of the daemon's skills this turn (skills.choice)"
    )

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        return _no_unknown(cls, data, "the request")

    @field_validator("stop")
    @classmethod
    def _stops(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list) and len(v) > 4:
            raise ValueError("at most 4 stop sequences")
        stops = [v] if isinstance(v, str) else v or []
        if any(len(s) > MAX_STOP_CHARS for s in stops):
            raise ValueError(f"a stop sequence is longer than {MAX_STOP_CHARS} characters")
        return v

    def check(self) -> None:
        """A 400 naming the first field whose value asks for something the daemon does not do."""
        for name, why in REFUSED.items():
            if _refused(name, getattr(self, name)):
                raise BadRequest(why, code="unsupported_parameter")
        for m in self.messages:
            m.check()


def _no_unknown(model: type[BaseModel], data: Any, what: str) -> Any:
    if isinstance(data, dict):
        unknown = [k for k in data if k not in model.model_fields]
        if unknown:
            names = ", ".join(repr(k) for k in unknown[:5])
            raise PydanticCustomError(
                "unknown_field",
                "{what} has field(s) {names} that this daemon does not know; every field it takes, and whether "
                "it is honoured, is in {docs}",
                {"what": what, "names": names, "docs": DOCS},
            )
    return data


def to_messages(
    req: ChatRequest, json_out: tuple[str, str, str] | None = None, tools: ToolUse | None = None
) -> list[ChatMessage]:
    """The request's messages; with JSON output, its instruction follows the client's system text."""
    out = []
    total = 0
    for m in req.messages:
        text = m.model_text()
        if len(text) > MAX_MESSAGE_CHARS:
            raise BadRequest(f"a message is longer than {MAX_MESSAGE_CHARS} characters", code="too_long")
        total += len(text)
        if total > MAX_TOTAL_CHARS:
            raise BadRequest(
                f"the messages hold more than {MAX_TOTAL_CHARS} characters in all; send a conversation_id "
                "and only the new message instead of the whole history", code="too_long",
            )  # fmt: skip
        role = {"developer": "system", "tool": "user"}.get(m.role, m.role)
        out.append(ChatMessage(role, text))  # type: ignore[arg-type]
    if json_out is not None:
        out.insert(len(out) - 1, ChatMessage("system", json_out[1]))
    return out


def json_output(req: ChatRequest) -> tuple[str, str, str] | None:
    """For a JSON ``response_format``: the grammar the answer must follow, the instruction the model reads
    (the grammar holds it to the format; the instruction tells it what to put there) and the
    response_format as JSON text for a remote server. None for text. A schema the grammar cannot enforce is
    a 400 naming the keyword."""
    fmt = req.response_format
    if fmt is None or fmt.type == "text":
        return None
    from assistant.llm.json_grammar import UnsupportedSchema, json_object_grammar, schema_grammar

    passed = json.dumps(fmt.model_dump(by_alias=True, exclude_none=True), ensure_ascii=False)
    if fmt.type == "json_object":
        return json_object_grammar(), "Answer with one JSON object and nothing else.", passed
    if fmt.json_schema is None:
        raise BadRequest(
            "response_format of type json_schema needs json_schema: {name, schema}", code="invalid_schema"
        )
    schema = fmt.json_schema.schema_ if fmt.json_schema.schema_ is not None else {}
    try:
        grammar = schema_grammar(schema)
    except UnsupportedSchema as exc:
        raise BadRequest(f"response_format.json_schema.schema: {exc}", code="unsupported_schema") from None
    shown = json.dumps(schema, ensure_ascii=False)
    about = f" ({fmt.json_schema.description})" if fmt.json_schema.description else ""
    hint = f"Answer with JSON only: a value for {fmt.json_schema.name}{about} that follows this JSON schema: {shown}"
    return grammar, hint, passed


@dataclass(frozen=True)
class ToolUse:
    """The tools a request offers the model: the grammar of its answer and the offer as JSON text
    (``GenerationParams.tools``: the backend shows it to the model its own way)."""

    tools: tuple[Tool, ...]
    grammar: str
    offered: str


def tool_use(req: ChatRequest) -> ToolUse | None:
    """The tools the model may call, or None (no tools, or tool_choice "none"). A tool's parameters with a
    keyword the grammar cannot enforce, or a tool_choice naming no tool, is a 400 naming it."""
    from assistant.llm.json_grammar import UnsupportedSchema
    from assistant.llm.tool_calls import Tool, tools_grammar

    choice = req.tool_choice
    if isinstance(choice, NamedToolChoice):
        choice_name = choice.function.name
    else:
        choice_name = choice or "auto"
    if not req.tools:
        if choice_name not in ("none", "auto"):
            raise BadRequest(f"tool_choice {choice_name!r} needs tools", code="invalid_tool_choice")
        return None
    if choice_name == "none":
        return None
    if req.response_format is not None and req.response_format.type != "text":
        raise BadRequest(
            "response_format and tools together are not supported; send one", code="unsupported_parameter"
        )
    names = [t.function.name for t in req.tools]
    if len(set(names)) != len(names):
        raise BadRequest("two tools have the same name", code="invalid_tools")
    tools = tuple(
        Tool(t.function.name, t.function.description, t.function.parameters or {}) for t in req.tools
    )
    try:
        grammar = tools_grammar(tools, choice_name, parallel=req.parallel_tool_calls is not False)
    except UnsupportedSchema as exc:
        raise BadRequest(f"tools: {exc}", code="unsupported_schema") from None
    chosen = choice.model_dump() if isinstance(choice, NamedToolChoice) else choice_name
    offered: dict[str, Any] = {"tools": [t.as_openai() for t in tools], "tool_choice": chosen}
    if req.parallel_tool_calls is not None:
        offered["parallel_tool_calls"] = req.parallel_tool_calls
    return ToolUse(tools, grammar, json.dumps(offered, ensure_ascii=False))


def to_params(
    req: ChatRequest,
    default_max: int,
    json_out: tuple[str, str, str] | None = None,
    tools: ToolUse | None = None,
) -> GenerationParams:
    stop = (req.stop,) if isinstance(req.stop, str) else tuple(req.stop or ())
    grammar, _, passed = json_out or (tools.grammar if tools else None, None, None)
    return GenerationParams(
        max_tokens=req.max_completion_tokens or req.max_tokens or default_max,
        temperature=0.7 if req.temperature is None else req.temperature,
        top_p=0.95 if req.top_p is None else req.top_p,
        stop=stop,
        seed=req.seed,
        presence_penalty=req.presence_penalty or 0.0,
        frequency_penalty=req.frequency_penalty or 0.0,
        grammar=grammar,
        response_format=passed,
        tools=tools.offered if tools else None,
    )


def explicit_fields(req: ChatRequest) -> set[str]:
    """The sampling fields the request set itself (a persona's settings apply to the others)."""
    given = {f for f in req.model_fields_set if getattr(req, f) is not None}
    fields = {"temperature", "top_p"} & given
    if {"max_tokens", "max_completion_tokens"} & given:
        fields.add("max_tokens")
    return fields
