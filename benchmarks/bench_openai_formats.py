"""JSON output and tool calls on a real model: the share of answers that parse and match their schema, and
what the grammar costs in decode speed.

    python -m benchmarks.bench_openai_formats --model smollm2 [--repeats 3] [--max-tokens 160]
    python -m benchmarks.bench_openai_formats --model /tmp/models/qwen0.5b.gguf

Each request goes through the chat route's own translation (assistant.api.chat_request: the instruction or
tool block, the grammar) to the embedded backend, once per prompt and repeat (temperature 0.7, seeds 1..N).
Modes: ``plain`` (no format: the baseline speed), ``json_schema`` (strict), ``tools_required`` and
``tools_auto``. Printed per mode: answers, the share valid (JSON parses and validates against the schema;
calls parse and their arguments validate; for tools_auto, text also counts), the share of calls (tools),
finish reasons, and completion tokens per second (median over the answers).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema

from assistant.api.chat_request import ChatRequest, json_output, to_messages, to_params, tool_use
from assistant.config import ModelSettings
from assistant.llm.tool_calls import parse_calls
from assistant.llm.types import Delta

PROMPTS = [
    "Tell me about Paris.",
    "What is the weather like in Oslo today?",
    "I need to know if it will rain in Lisbon.",
    "Describe Rome for a tourist.",
]
CITY = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 1, "maxLength": 40},
        "country": {"type": "string"},
        "population_millions": {"type": "number"},
        "landmarks": {
            "type": "array",
            "items": {"type": "string", "maxLength": 40},
            "minItems": 1,
            "maxItems": 3,
        },
    },
    "required": ["city", "country", "population_millions", "landmarks"],
    "additionalProperties": False,
}
WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 1},
        "unit": {"type": "string", "enum": ["C", "F"]},
    },
    "required": ["city"],
    "additionalProperties": False,
}
TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "description": "The weather now in a city", "parameters": WEATHER},
}
MODES: dict[str, dict[str, Any]] = {
    "plain": {},
    "json_schema": {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "city", "schema": CITY, "strict": True},
        }
    },
    "tools_required": {"tools": [TOOL], "tool_choice": "required"},
    "tools_auto": {"tools": [TOOL]},
}


def load(model: str) -> Any:
    from assistant.llm.llama import LlamaBackend
    from assistant.llm.model_file import bundled_model_path

    path = Path(model) if model.endswith(".gguf") else bundled_model_path(Path(tempfile.mkdtemp()), model)
    return LlamaBackend.load(path, ModelSettings(n_ctx=2048, prompt_cache_mb=0))


def valid(mode: str, text: str) -> tuple[bool, bool]:
    """(valid, is a call)."""
    if mode == "plain":
        return True, False
    if mode == "json_schema":
        try:
            jsonschema.validate(json.loads(text), CITY)
            return True, False
        except (ValueError, jsonschema.ValidationError):
            return False, False
    calls = parse_calls(text)
    if calls is None:
        return mode == "tools_auto" and not text.lstrip().startswith("<"), False
    try:
        for c in calls:
            jsonschema.validate(json.loads(c.arguments), WEATHER)
        return all(c.name == "get_weather" for c in calls), True
    except (ValueError, jsonschema.ValidationError):
        return False, True


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=160)
    args = ap.parse_args()
    backend = load(args.model)
    print(
        f"model {backend.name}, {len(PROMPTS)} prompts x {args.repeats} seeds, max_tokens {args.max_tokens}"
    )
    for mode, extra in MODES.items():
        rates: list[float] = []
        finishes: Counter[str] = Counter()
        ok = calls = n = 0
        for prompt in PROMPTS:
            for seed in range(1, args.repeats + 1):
                req = ChatRequest.model_validate(
                    {
                        "messages": [{"role": "user", "content": prompt}],
                        "temperature": 0.7,
                        "seed": seed,
                        **extra,
                    }
                )
                json_out, tools = json_output(req), tool_use(req)
                messages = to_messages(req, json_out, tools)
                params = to_params(req, args.max_tokens, json_out, tools)
                parts: list[str] = []
                last = Delta()
                first = time.perf_counter()
                for d in backend.stream_chat(messages, params, threading.Event()):
                    if d.text and not parts:
                        first = time.perf_counter()
                    parts.append(d.text)
                    last = d
                elapsed = time.perf_counter() - first
                text = "".join(parts)
                good, call = valid(mode, text)
                ok, calls, n = ok + good, calls + call, n + 1
                finishes[str(last.finish_reason)] += 1
                tokens = last.usage.completion_tokens if last.usage else 0
                if tokens > 1 and elapsed > 0:
                    rates.append((tokens - 1) / elapsed)
        print(
            f"{mode:15s} answers {n:3d}  valid {ok / n:6.1%}  calls {calls / n:6.1%}  "
            f"finish {dict(finishes)}  tok/s {statistics.median(rates) if rates else 0:6.1f}",
            flush=True,
        )
    backend.close()


if __name__ == "__main__":
    main()
