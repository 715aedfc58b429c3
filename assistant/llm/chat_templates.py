"""Turning chat messages into a prompt string for llama.cpp.

The template stored in the GGUF file wins. A file without one (the bundled Gemma 3 base model) gets a
fallback chosen from its architecture. ``model.chat_format`` overrides both with a named format.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistant.llm.types import ChatMessage

if TYPE_CHECKING:
    from llama_cpp.llama_types import ChatCompletionRequestMessage

Formatter = Callable[[Sequence[ChatMessage]], "Prompt"]


@dataclass(frozen=True)
class Prompt:
    text: str
    stop: tuple[str, ...] = ()


def format_gemma(messages: Sequence[ChatMessage]) -> Prompt:
    """Gemma's turn format. Gemma has no system role: system text leads the first user turn."""
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    parts = []
    first_user = True
    for m in messages:
        if m.role == "system":
            continue
        content = m.content
        if m.role == "user" and first_user and system:
            content = f"{system}\n\n{content}"
        if m.role == "user":
            first_user = False
        role = "model" if m.role == "assistant" else "user"
        parts.append(f"<start_of_turn>{role}\n{content}<end_of_turn>\n")
    if first_user and system:  # no user turn at all
        parts.insert(0, f"<start_of_turn>user\n{system}<end_of_turn>\n")
    parts.append("<start_of_turn>model\n")
    return Prompt("".join(parts), ("<end_of_turn>",))


def format_chatml(messages: Sequence[ChatMessage]) -> Prompt:
    parts = [f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n" for m in messages]
    parts.append("<|im_start|>assistant\n")
    return Prompt("".join(parts), ("<|im_end|>",))


def format_llama3(messages: Sequence[ChatMessage]) -> Prompt:
    parts = [f"<|start_header_id|>{m.role}<|end_header_id|>\n\n{m.content}<|eot_id|>" for m in messages]
    parts.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
    return Prompt("".join(parts), ("<|eot_id|>",))


NAMED_FORMATS: dict[str, Formatter] = {
    "gemma": format_gemma,
    "chatml": format_chatml,
    "llama3": format_llama3,
}

# general.architecture -> fallback format, for files without a chat template.
ARCH_FALLBACK: dict[str, str] = {
    "gemma": "gemma",
    "gemma2": "gemma",
    "gemma3": "gemma",
    "gemma3n": "gemma",
    "llama": "llama3",
    "qwen2": "chatml",
    "qwen3": "chatml",
}


def jinja_formatter(template: str, bos: str, eos: str) -> Formatter:
    """The GGUF file's own Jinja template, rendered by llama-cpp-python's formatter."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    fmt = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)

    def render(messages: Sequence[ChatMessage]) -> Prompt:
        out = fmt(messages=[_request_message(m) for m in messages])
        stop = out.stop if isinstance(out.stop, list) else [out.stop] if out.stop else []
        text = out.prompt
        if bos and text.startswith(bos):  # llama.cpp adds BOS itself when tokenizing
            text = text[len(bos) :]
        return Prompt(text, tuple(s for s in stop if s))

    return render


def choose_formatter(
    metadata: dict[str, str], override: str | None, bos: str = "", eos: str = ""
) -> tuple[str, Formatter]:
    """(description, formatter) for a model: override > the file's template > architecture fallback."""
    if override:
        key = override.lower().replace("-", "").replace("_", "")
        for name, fn in NAMED_FORMATS.items():
            if name.replace("-", "") == key:
                return name, fn
        raise ValueError(f"unknown chat_format {override!r}; known: {', '.join(NAMED_FORMATS)}")
    template = metadata.get("tokenizer.chat_template")
    if template:
        return "gguf-template", jinja_formatter(template, bos, eos)
    arch = metadata.get("general.architecture", "")
    name = ARCH_FALLBACK.get(arch, "chatml")
    return f"fallback:{name}", NAMED_FORMATS[name]


def _request_message(m: ChatMessage) -> ChatCompletionRequestMessage:
    if m.role == "system":
        return {"role": "system", "content": m.content}
    if m.role == "user":
        return {"role": "user", "content": m.content}
    return {"role": "assistant", "content": m.content}
