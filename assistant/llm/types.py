"""The LLM backend protocol and the types that cross it.

A backend turns chat messages into a stream of text deltas. It is called from one worker thread at a
time (see assistant.llm.worker), blocks while it generates, and checks ``cancel`` between tokens.
Implementations: assistant.llm.llama.LlamaBackend (embedded llama.cpp) and
assistant.llm.remote.RemoteBackend (any OpenAI-compatible server).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length", "cancelled"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class GenerationParams:
    max_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 0.95
    stop: tuple[str, ...] = ()
    seed: int | None = None
    # OpenAI's penalties, as llama.cpp applies them to the recent tokens: a logit loses
    # ``presence_penalty`` when its token appeared, plus ``frequency_penalty`` for each time it did.
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    # A llama.cpp GBNF grammar the output must follow (root rule "root"). The embedded backend honours it;
    # a remote backend ignores it, so callers still check what comes back.
    grammar: str | None = None
    # The client's OpenAI ``response_format`` as JSON text: a remote backend passes it to its server (which
    # constrains the answer itself); the embedded backend follows ``grammar``.
    response_format: str | None = None
    # Tools the model may call, as JSON text: {"tools": [OpenAI tool objects], "tool_choice": ...}. The
    # embedded backend lists them in the system message (assistant.llm.tool_calls) and follows ``grammar``;
    # a remote backend passes them to its server and writes the server's calls back as <tool_call> text.
    tools: str | None = None
    # Keep the prompt's state in the embedded backend's RAM cache for a later request that continues it (a
    # chat's next turn). Skills' prompts are never continued: they set it false (assistant.skillkit.api).
    save_state: bool = True
    # The conversation the prompt belongs to: its saved state replaces the one last saved for it.
    state_group: str | None = None
    # Nobody waits for this job's first token (a chat's next prompt read ahead while the user reads): its
    # prefill is no sample of the model's reading speed, which sets the recall budget (prefill_meter).
    background: bool = False

    @property
    def constrained(self) -> bool:
        """The answer must follow a format (JSON): a rule's or a skill's prose cannot stand in for it."""
        return self.grammar is not None or self.response_format is not None or self.tools is not None


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Delta:
    """A piece of generated text. The last delta of a stream has finish_reason and usage set."""

    text: str = ""
    finish_reason: FinishReason | None = None
    usage: Usage | None = None


@dataclass
class Completion:
    text: str
    finish_reason: FinishReason
    usage: Usage = field(default_factory=Usage)


class LLMBackend(Protocol):
    name: str

    def stream_chat(
        self, messages: list[ChatMessage], params: GenerationParams, cancel: threading.Event
    ) -> Iterator[Delta]:
        """Yield deltas; the final one carries finish_reason and usage. Stops early when cancel is set."""
        ...

    def close(self) -> None: ...


def collect(deltas: Iterator[Delta]) -> Completion:
    """Join a delta stream into one completion."""
    parts: list[str] = []
    finish: FinishReason = "stop"
    usage = Usage()
    for d in deltas:
        parts.append(d.text)
        if d.finish_reason:
            finish = d.finish_reason
        if d.usage:
            usage = d.usage
    return Completion("".join(parts), finish, usage)
