"""Fast unit tests of the prompt-side pieces of the llama.cpp backend (no model needed)."""

from __future__ import annotations

import pytest

from assistant.llm.chat_templates import choose_formatter, format_chatml, format_gemma
from assistant.llm.llama import StopScanner
from assistant.llm.types import ChatMessage


def feed_all(stops: list[str], pieces: list[str]) -> tuple[str, bool]:
    s = StopScanner(stops)
    out = []
    for p in pieces:
        text, stopped = s.feed(p)
        out.append(text)
        if stopped:
            return "".join(out), True
    return "".join(out) + s.flush(), False


def test_stop_scanner_across_pieces() -> None:
    assert feed_all(["<end>"], ["Hello", " wor", "ld<e", "nd>more"]) == ("Hello world", True)
    assert feed_all(["<end>"], ["a<e", "x"]) == ("a<ex", False)
    assert feed_all([], ["a", "b"]) == ("ab", False)
    assert feed_all(["\n\n", "STOP"], ["one\n", "\ntwo"]) == ("one", True)


def test_stop_scanner_holds_back_only_possible_prefixes() -> None:
    s = StopScanner(["<end_of_turn>"])
    assert s.feed("abc<") == ("abc", False)
    assert s.feed("b") == ("<b", False)


def test_gemma_fallback_puts_system_text_in_the_first_user_turn() -> None:
    p = format_gemma(
        [
            ChatMessage("system", "Be brief."),
            ChatMessage("user", "Hi"),
            ChatMessage("assistant", "Hello"),
            ChatMessage("user", "Bye"),
        ]
    )
    assert p.text == (
        "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n"
        "<start_of_turn>model\nHello<end_of_turn>\n"
        "<start_of_turn>user\nBye<end_of_turn>\n"
        "<start_of_turn>model\n"
    )
    assert p.stop == ("<end_of_turn>",)


def test_formatter_choice() -> None:
    assert choose_formatter({"general.architecture": "gemma3"}, None)[0] == "fallback:gemma"
    assert choose_formatter({"general.architecture": "mamba"}, None)[0] == "fallback:chatml"
    name, fmt = choose_formatter(
        {
            "general.architecture": "gemma3",
            "tokenizer.chat_template": "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}",
        },
        None,
    )
    assert name == "gguf-template"  # the file's template wins over the fallback
    assert fmt([ChatMessage("user", "hi")]).text == "[user]hi"
    assert choose_formatter({"tokenizer.chat_template": "x"}, "chatml")[1] is format_chatml  # config wins
    with pytest.raises(ValueError, match="unknown chat_format"):
        choose_formatter({}, "klingon")
