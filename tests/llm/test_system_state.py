"""The prefix every chat with a system text shares (assistant.llm.system_state.SystemStates.anchor), on the
built-in templates and a tokenizer of one token per byte (no model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.llm.chat_templates import format_chatml, format_gemma, format_llama3
from assistant.llm.fit import PromptEncoder
from assistant.llm.state_disk import DiskStates
from assistant.llm.system_state import SystemStates
from assistant.llm.types import ChatMessage


def byte_tokens(text: bytes, add_bos: bool, special: bool) -> list[int]:
    return ([1] if add_bos else []) + list(text)


@pytest.mark.parametrize("fmt", [format_chatml, format_gemma, format_llama3])
def test_the_anchor_is_what_any_first_chat_begins_with(fmt, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    states = SystemStates(DiskStates(tmp_path, 1 << 20), fmt, "m", "r", "c", "t")
    encode = PromptEncoder(byte_tokens).encode
    system = ChatMessage("system", "Calendar: today is Monday.\n\nYou are helpful.")
    states.keep([system.content])
    anchor = states.anchor([system], encode)
    for messages in (
        [system, ChatMessage("user", "What is the capital of France?")],
        [system, ChatMessage("user", "Hi"), ChatMessage("assistant", "Hello!"), ChatMessage("user", "Zzz")],
    ):
        tokens = encode(fmt(messages))
        assert tokens[: len(anchor)] == list(anchor)
    text = bytes(t for t in anchor if t > 1).decode()
    assert "You are helpful." in text  # the system text is in it, the user's words are not
    assert states.anchor([system], encode) is anchor  # remembered


def test_no_system_message_no_anchor(tmp_path: Path) -> None:
    states = SystemStates(DiskStates(tmp_path, 1 << 20), format_chatml, "m", "r", "c", "t")
    assert states.anchor([ChatMessage("user", "hi")], PromptEncoder(byte_tokens).encode) == ()


def test_the_key_holds_every_part(tmp_path: Path) -> None:
    states = SystemStates(DiskStates(tmp_path, 1 << 20), format_chatml, "model", "runtime", "ctx", "tmpl")
    key = states.key([5, 6, 7])
    assert (key.model, key.runtime, key.context, key.template, key.tokens) == (
        "model",
        "runtime",
        "ctx",
        "tmpl",
        (5, 6, 7),
    )


def test_only_the_kept_system_texts_have_an_anchor(tmp_path: Path) -> None:
    states = SystemStates(DiskStates(tmp_path, 1 << 20), format_chatml, "m", "r", "c", "t")
    encode = PromptEncoder(byte_tokens).encode
    monday, tuesday, client = (
        ChatMessage("system", t) for t in ("Monday. Be kind.", "Tuesday. Be kind.", "12:01")
    )
    assert states.anchor([client], encode) == ()  # a client's own system text (it may change every request)
    states.keep([monday.content])
    assert states.anchor([monday], encode)
    states.keep([tuesday.content])  # after midnight: yesterday's still served, the day before's not
    assert states.anchor([monday], encode) and states.anchor([tuesday], encode)
    states.keep(["Wednesday. Be kind."])
    assert states.anchor([monday], encode) == () and states.anchor([tuesday], encode)
