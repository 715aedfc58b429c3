"""Function calling as text the model reads and writes, held to a grammar.

The format is Qwen2.5's own (its chat template's tool section, also the Hermes format many open models were
trained on): the tools are listed in a system block inside ``<tools></tools>``, a call is a line of JSON
``{"name": ..., "arguments": {...}}`` inside ``<tool_call></tool_call>``, and a tool's result comes back as a
user turn inside ``<tool_response></tool_response>``. A model without a tool format of its own (SmolLM2,
Gemma 3) gets the same text: the fallback is Qwen's format, and the grammar keeps the calls well formed.

The grammar (``tools_grammar``) is built from one JSON schema, ``anyOf`` one call object per tool whose
``arguments`` is the tool's ``parameters`` schema (assistant.llm.json_grammar: a keyword it cannot enforce is
an UnsupportedSchema), so every call parses and its arguments match their schema. ``required`` (or a named
tool) allows only calls; ``auto`` allows calls, one bare call object (Qwen2.5 0.5B often leaves the tags out), or
text that begins with neither ``<`` nor ``{``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from assistant.llm.json_grammar import UnsupportedSchema, schema_grammar
from assistant.llm.types import ChatMessage

CALL_OPEN = "<tool_call>"
CALL_CLOSE = "</tool_call>"
_CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]

    def as_openai(self) -> dict[str, Any]:
        function: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
        }
        return {"type": "function", "function": function}


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as OpenAI sends it

    def as_openai(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


def tools_prompt(tools: Sequence[Tool]) -> str:
    """The system block listing the tools, as Qwen2.5's chat template writes it."""
    listed = "\n".join(json.dumps(t.as_openai(), ensure_ascii=False) for t in tools)
    return (
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n"
        f"<tools>\n{listed}\n</tools>\n\n"
        "For each function call, return a json object with function name and arguments within "
        "<tool_call></tool_call> XML tags:\n<tool_call>\n"
        '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
    )


def with_tools(messages: Sequence[ChatMessage], offered: str) -> list[ChatMessage]:
    """``messages`` with the tool block (``GenerationParams.tools``) after the system text, as Qwen2.5's
    template writes it: ``{system}\n\n# Tools ...``; a system message of its own when there is none."""
    tools = [
        Tool(f["name"], f.get("description", ""), f.get("parameters") or {})
        for f in (t["function"] for t in json.loads(offered)["tools"])
    ]
    block = tools_prompt(tools)
    out = list(messages)
    if out and out[0].role == "system":
        out[0] = ChatMessage("system", f"{out[0].content}\n\n{block}")
    else:
        out.insert(0, ChatMessage("system", block))
    return out


def call_text(name: str, arguments: str) -> str:
    """One call as the model writes it (for an assistant turn that made calls, in the history)."""
    try:
        args: Any = json.loads(arguments) if arguments.strip() else {}
    except (ValueError, RecursionError):  # not JSON (or nested past the parser): the text as it came
        args = arguments
    body = json.dumps({"name": name, "arguments": args}, ensure_ascii=False)
    return f"{CALL_OPEN}\n{body}\n{CALL_CLOSE}"


def response_text(content: str) -> str:
    """A tool's result as the model reads it (a user turn)."""
    return f"<tool_response>\n{content}\n</tool_response>"


def stored_answer(text: str) -> str:
    """An answer as the conversation keeps it: calls as a client sends them back (``call_text``, tags and all,
    also for a bare call object), so a resent history matches the stored one; text unchanged."""
    calls = parse_calls(text)
    return "\n".join(call_text(c.name, c.arguments) for c in calls) if calls else text


def is_response_text(text: str) -> bool:
    """``text`` is a tool's result as ``response_text`` writes it: outside text, never the user's own words."""
    return text.startswith("<tool_response>\n") and text.endswith("\n</tool_response>")


def tools_grammar(tools: Sequence[Tool], choice: str, *, parallel: bool = True) -> str:
    """GBNF for the answer: calls only (``required``, or the name of one tool), or calls or text (``auto``)."""
    chosen = [t for t in tools if choice in ("auto", "required") or t.name == choice]
    if not chosen:
        raise UnsupportedSchema(f"tool_choice names {choice!r}, which is not among the tools")
    calls = [
        {
            "type": "object",
            "properties": {"name": {"const": t.name}, "arguments": t.parameters or {"type": "object"}},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for t in chosen
    ]
    schema = calls[0] if len(calls) == 1 else {"anyOf": calls}
    body = schema_grammar(schema)
    lines = [
        ("call-json ::= " + line[len("root ::= ") :]) if line.startswith("root ::= ") else line
        for line in body.splitlines()
    ]
    call = f'"{CALL_OPEN}\\n" call-json "\\n{CALL_CLOSE}"'
    calls_rule = 'call ("\\n" call)*' if parallel else "call"
    root = "calls | call-json | free" if choice == "auto" else "calls"
    head = [
        f"root ::= {root}",
        f"calls ::= {calls_rule}",
        f"call ::= {call}",
        "free ::= [^<{\\x00-\\x08] [^\\x00]*",
    ]
    return "\n".join([*head, *lines])


def parse_calls(text: str) -> list[ToolCall] | None:
    """The calls an answer makes, or None when it is text (does not begin with a call) or a call is cut. A
    bare call object (``{"name": ..., "arguments": ...}`` and nothing else, as Qwen2.5 0.5B often writes one
    without its tags) is a call too."""
    stripped = text.strip()
    if stripped.startswith("{"):
        return _bare_call(stripped)
    if not stripped.startswith(CALL_OPEN):
        return None
    out = []
    for body in _CALL.findall(stripped):
        try:
            call = json.loads(body)
        except (ValueError, RecursionError):
            return None
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            return None
        arguments = json.dumps(call.get("arguments", {}), ensure_ascii=False)
        out.append(ToolCall("call_" + uuid.uuid4().hex[:24], call["name"], arguments))
    return out or None


def _bare_call(text: str) -> list[ToolCall] | None:
    try:
        call = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(call, dict) or set(call) != {"name", "arguments"} or not isinstance(call["name"], str):
        return None
    arguments = json.dumps(call["arguments"], ensure_ascii=False)
    return [ToolCall("call_" + uuid.uuid4().hex[:24], call["name"], arguments)]
