"""Turning chat messages into a prompt for llama.cpp.

The template stored in the GGUF file wins. A file without one (the bundled Gemma 3 base model) gets a
fallback chosen from its architecture. ``model.chat_format`` overrides both with a named format.

A prompt is a sequence of parts: template text (a ``str``, whose control tokens such as ``<end_of_turn>``
are real delimiters) and message text (``Plain``, tokenized without special-token parsing, so a
``<|im_start|>`` typed by a user or planted in a headline stays plain text). The GGUF's Jinja template is
rendered with a random placeholder in place of each message's text; the rendered prompt is split at the
placeholders (``split_placeholders``).

The Jinja template is a program written by the file's publisher. llama-cpp-python renders it in Jinja's
``ImmutableSandboxedEnvironment`` (no attribute starting with ``_``, no mutation of the messages, ranges capped):
``jinja_formatter`` refuses to run one outside a sandbox (should a llama-cpp-python upgrade change that) and
renders it once on a sample conversation, so a template that raises fails at load with ModelFileError, not at
a user's first chat. The bundled models' templates are also pinned by sha256 (assistant.llm.bundled).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from assistant.core.errors import ModelFileError
from assistant.llm.types import ChatMessage

if TYPE_CHECKING:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    from llama_cpp.llama_types import ChatCompletionRequestMessage

Formatter = Callable[[Sequence[ChatMessage]], "Prompt"]


class Plain(NamedTuple):
    """Message text (user, assistant, system, recalled or fetched): never parsed for control tokens."""

    text: str


Part = str | Plain


@dataclass(frozen=True)
class Prompt:
    parts: tuple[Part, ...]
    stop: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return "".join(p.text if isinstance(p, Plain) else p for p in self.parts)


def _parts(*pieces: Part) -> tuple[Part, ...]:
    """Join neighbouring template pieces; drop empty pieces (an empty text tokenizes to nothing)."""
    out: list[Part] = []
    for p in pieces:
        if not (p.text if isinstance(p, Plain) else p):
            continue
        if isinstance(p, str) and out and isinstance(out[-1], str):
            out[-1] += p
        else:
            out.append(p)
    return tuple(out)


def format_gemma(messages: Sequence[ChatMessage]) -> Prompt:
    """Gemma's turn format. Gemma has no system role: system text leads the first user turn."""
    system: list[Part] = []
    for m in messages:
        if m.role == "system":
            system += [*(["\n\n"] if system else []), Plain(m.content)]
    parts: list[Part] = []
    first_user = True
    for m in messages:
        if m.role == "system":
            continue
        role = "model" if m.role == "assistant" else "user"
        parts.append(f"<start_of_turn>{role}\n")
        if m.role == "user" and first_user and system:
            parts += [*system, "\n\n"]
        if m.role == "user":
            first_user = False
        parts += [Plain(m.content), "<end_of_turn>\n"]
    if first_user and system:  # no user turn at all
        parts[:0] = ["<start_of_turn>user\n", *system, "<end_of_turn>\n"]
    parts.append("<start_of_turn>model\n")
    return Prompt(_parts(*parts), ("<end_of_turn>",))


def format_chatml(messages: Sequence[ChatMessage]) -> Prompt:
    parts: list[Part] = []
    for m in messages:
        parts += [f"<|im_start|>{m.role}\n", Plain(m.content), "<|im_end|>\n"]
    parts.append("<|im_start|>assistant\n")
    return Prompt(_parts(*parts), ("<|im_end|>",))


def format_llama3(messages: Sequence[ChatMessage]) -> Prompt:
    parts: list[Part] = []
    for m in messages:
        parts += [f"<|start_header_id|>{m.role}<|end_header_id|>\n\n", Plain(m.content), "<|eot_id|>"]
    parts.append("<|start_header_id|>assistant<|end_header_id|>\n\n")
    return Prompt(_parts(*parts), ("<|eot_id|>",))


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


# Around each placeholder: an em space, which no template writes, tells whether the template trimmed it.
_PAD = "\u2003"


def placeholder(nonce: str, i: int) -> str:
    return f"{_PAD}\ue000{nonce}:{i}\ue001{_PAD}"


def split_placeholders(text: str, nonce: str, contents: Sequence[str]) -> tuple[Part, ...]:
    """Template text between the placeholders, each placeholder replaced by ``Plain(contents[i])``.

    A placeholder the template trimmed (``| trim``) gets the text trimmed the same way; one the template
    left out (a message it does not show) adds nothing.
    """
    pattern = re.compile(f"({_PAD}?)\ue000{re.escape(nonce)}:(\\d+)\ue001({_PAD}?)")
    parts: list[Part] = []
    pos = 0
    for match in pattern.finditer(text):
        parts.append(text[pos : match.start()])
        content = contents[int(match.group(2))]
        if not match.group(1):
            content = content.lstrip()
        if not match.group(3):
            content = content.rstrip()
        parts.append(Plain(content))
        pos = match.end()
    parts.append(text[pos:])
    return _parts(*parts)


def jinja_formatter(template: str, bos: str, eos: str) -> Formatter:
    """The GGUF file's own Jinja template, rendered by llama-cpp-python's formatter in a Jinja sandbox."""
    from jinja2 import TemplateError
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    try:
        fmt = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        require_sandbox(fmt)
        render_jinja(fmt, [ChatMessage("user", "Hello")])
    except (TemplateError, ValueError, TypeError, OverflowError) as exc:
        raise ModelFileError(
            f"the chat template in the model file cannot be rendered ({type(exc).__name__}: {exc}); "
            'set model.chat_format (e.g. "chatml") to use a named format instead'
        ) from None

    def render(messages: Sequence[ChatMessage]) -> Prompt:
        return render_jinja(fmt, messages)

    return render


def require_sandbox(fmt: Jinja2ChatFormatter) -> None:
    """Raise unless ``fmt`` renders in a sandboxed Jinja environment (the template is untrusted input)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = getattr(getattr(fmt, "_environment", None), "environment", None)
    if not isinstance(env, ImmutableSandboxedEnvironment):
        raise RuntimeError(
            f"llama-cpp-python renders chat templates in {type(env).__name__}, not in Jinja's "
            "ImmutableSandboxedEnvironment: a model file's template could run Python code; pin a version that does"
        )


def render_jinja(fmt: Jinja2ChatFormatter, messages: Sequence[ChatMessage]) -> Prompt:
    nonce = secrets.token_hex(8)
    while any(nonce in m.content for m in messages):  # an attacker cannot guess it, but be exact
        nonce = secrets.token_hex(8)
    held = [ChatMessage(m.role, placeholder(nonce, i)) for i, m in enumerate(messages)]
    out = fmt(messages=[_request_message(m) for m in held])
    stop = out.stop if isinstance(out.stop, list) else [out.stop] if out.stop else []
    # A BOS the template writes stays: PromptEncoder adds one only when the template did not.
    parts = split_placeholders(out.prompt, nonce, [m.content for m in messages])
    return Prompt(parts, tuple(s for s in stop if s))


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
