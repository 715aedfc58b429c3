"""Control tokens (issue 25): DeepSeek's ``<｜Assistant｜>`` and ``<｜end▁of▁sentence｜>``, ``<think>`` and
GLM's ``<sop>`` are stripped; beyond the hand list, the loaded model's own vocabulary (its control and
user-defined tokens that look like markup) and its chat template's literal tokens are learned and
stripped too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.core import text
from assistant.core.text import (
    clean_text,
    learn_control_tokens,
    strip_control_tokens,
    template_control_tokens,
    vocabulary_control_tokens,
)


@pytest.fixture(autouse=True)
def _forget_learned() -> Iterator[None]:
    yield
    text.forget_learned_control_tokens()


@pytest.mark.parametrize(
    "token",
    ["<｜Assistant｜>", "<｜end▁of▁sentence｜>", "<think>", "</think>", "<sop>", "<｜User｜>", "[gMASK]"],
)
def test_the_missing_template_tokens_are_stripped(token: str) -> None:
    assert token not in strip_control_tokens(f"headline {token} more")
    assert token not in clean_text(f"headline {token} more")


DEEPSEEK_LIKE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}{{'<｜User｜>' + m['content']}}"
    "{% else %}{{'<｜Assistant｜>' + m['content'] + '<｜end▁of▁sentence｜>'}}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<｜Assistant｜><think>\\n' }}{% endif %}"
    "{{ '<|turn_x|>' }}{{ '[TURN_Y]' }}{{ '<custom_turn>' }}"
)


def test_a_templates_literal_tokens_are_found() -> None:
    found = template_control_tokens(DEEPSEEK_LIKE)
    assert {"<｜User｜>", "<｜Assistant｜>", "<｜end▁of▁sentence｜>", "<think>", "<custom_turn>"} <= found
    assert "[TURN_Y]" in found


class _Vocab:
    """llama.cpp's vocabulary as llama-cpp-python's LlamaModel shows it (token_get_text, token_get_attr)."""

    CONTROL, USER_DEFINED, NORMAL = 1 << 3, 1 << 4, 1 << 2
    tokens = [
        ("hello", NORMAL), ("<my_turn>", CONTROL), ("[SPECIAL_CALL]", USER_DEFINED), ("<b>", NORMAL),
        ("okay", CONTROL), ("<x y>", CONTROL), ("\n", CONTROL),
    ]  # fmt: skip

    def n_vocab(self) -> int:
        return len(self.tokens)

    def token_get_text(self, token: int) -> str:
        return self.tokens[token][0]

    def token_get_attr(self, token: int) -> int:
        return self.tokens[token][1]


def test_the_vocabularys_markup_like_control_tokens_are_learned() -> None:
    assert vocabulary_control_tokens(_Vocab()) == {"<my_turn>", "[SPECIAL_CALL]"}
    assert "<my_turn>" in strip_control_tokens("a <my_turn> b")
    learn_control_tokens(["<my_turn>", "[SPECIAL_CALL]", "okay"])
    assert strip_control_tokens("a <my_turn> b [SPECIAL_CALL] okay") == "a   b   okay"
    assert "<my_turn>" not in clean_text("a <my_turn> b")


@pytest.mark.slow
def test_the_bundled_models_vocabulary_is_learned(tmp_path: Path) -> None:
    from llama_cpp import Llama

    from assistant.llm.model_file import bundled_model_path

    model = Llama(str(bundled_model_path(tmp_path, "smollm2")), n_ctx=64, verbose=False, vocab_only=True)
    found = vocabulary_control_tokens(model._model)
    assert {"<|im_start|>", "<|im_end|>", "<repo_name>"} <= found


def test_a_llama_backends_vocabulary_and_template_are_learned_and_a_remote_one_teaches_nothing() -> None:
    class _Llama:
        _model = _Vocab()
        metadata = {"tokenizer.chat_template": DEEPSEEK_LIKE}

    class _Backend:
        llm = _Llama()
        template = "chatml"

    assert text.learn_model_control_tokens(object()) == 0
    assert text.learn_model_control_tokens(_Backend()) >= 3  # <my_turn>, [SPECIAL_CALL], <custom_turn>...
    assert strip_control_tokens("<custom_turn>x<my_turn>") == " x "
