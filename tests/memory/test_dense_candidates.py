"""The candidate rules of the dense-half ablation on conversations (benchmarks/dense_candidates.py,
benchmarks/ablate_dense.py; issue 26): pure functions, and the ranking with a tiny fixed embedder."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, cast

import numpy as np
import pytest

from benchmarks.ablate_dense import dense_rankings
from benchmarks.dense_candidates import (
    TURN_RULES,
    named_period,
    resolve_persons,
    strip_question,
    turns_of,
    unspeak,
    with_caption,
)
from memory.eval import Dataset
from memory.onnx_embedder import OnnxEmbedder


def test_first_person_said_as_the_speaker_and_second_as_the_one_answered() -> None:
    got = resolve_persons("Caroline: I went to a support group. My mom came, I'm happy.", ["Melanie: Hey!"])
    assert got == "Caroline: Caroline went to a support group. Caroline's mom came, Caroline is happy."
    got = resolve_persons("Melanie: Did you like it? Your friends?", ["Caroline: I went", "Melanie: Oh"])
    assert got == "Melanie: Did Caroline like it? Caroline's friends?"


def test_a_turn_without_a_speaker_is_left_alone() -> None:
    assert resolve_persons("I think so", ["Bob: you?"]) == "I think so"
    assert unspeak("I think so") == "I think so"
    assert unspeak("Jon Snow: I know nothing") == "I know nothing"
    # "you" stays when no one else spoke before
    assert resolve_persons("Ann: you and I", []) == "Ann: you and Ann"


@pytest.mark.parametrize(
    ("question", "statement"),
    [
        ("When did Gina get her tattoo?", "Gina get her tattoo"),
        ("How many times has Jon been to Paris?", "times has Jon been to Paris"),
        ("Would Caroline pursue writing?", "Would Caroline pursue writing"),
        ("What?", "What"),
    ],
)
def test_question_words_stripped(question: str, statement: str) -> None:
    assert strip_question(question) == statement


def test_named_period() -> None:
    june = named_period("When did Melanie go camping in June?")
    assert june is not None and june(date(2022, 6, 30)) and not june(date(2022, 7, 1))
    day = named_period("What did she show him on October 13, 2023?")
    assert day is not None and day(date(2023, 10, 13)) and not day(date(2023, 10, 14))
    year = named_period("How often did he swim in 2023?")
    assert year is not None and year(date(2023, 1, 1)) and not year(date(2022, 12, 31))
    assert named_period("May I ask what she said?") is not None  # capitalised at a sentence start: a month
    assert named_period("what she may have said in 12 minutes") is None


def test_caption_joins_the_turn_only_when_it_shared_a_photo() -> None:
    doc = {"text": "Ann: look!", "metadata": {"blip_caption": "a photo of a sunset"}}
    assert with_caption(doc) == "Ann: look! [shares a photo of a sunset]"
    assert with_caption({"text": "Ann: hi", "metadata": {}}) == "Ann: hi"


def _data() -> Dataset:
    said = "1:56 pm on 8 May, 2023"
    corpus: dict[str, dict[str, Any]] = {
        f"c:{n}": {"_id": f"c:{n}", "text": text, "metadata": {"conversation_id": "c", "session_date_time": said}}
        for n, text in enumerate(["Ann: we went camping", "Bob: where?", "Ann: the lake", "Bob: nice"])
    }
    corpus["d:0"] = {"_id": "d:0", "text": "Cy: hello", "metadata": {"conversation_id": "d",
                                                                    "session_date_time": "1 June, 2023"}}
    return Dataset(corpus, {}, {})


def test_turns_know_the_turns_before_them_in_their_own_conversation() -> None:
    turns = turns_of(_data())
    assert [t.before for t in turns[:3]] == [[], ["Ann: we went camping"], ["Ann: we went camping", "Bob: where?"]]
    assert turns[4].before == [] and turns[4].day == "1 June 2023"
    assert TURN_RULES["1 before + turn"](turns[2]) == ["Bob: where?\nAnn: the lake"]
    assert TURN_RULES["best of: turn | 1 before + turn"](turns[0]) == ["Ann: we went camping"] * 2


class _Axes:
    """One axis per word listed: a text's vector counts those words (then unit length)."""

    words = ("camping", "lake", "nice", "hello")

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out = []
        for t in texts:
            v = [float(t.lower().count(w)) for w in self.words]
            norm = sum(x * x for x in v) ** 0.5 or 1.0
            out.append([x / norm for x in v])
        return out


def test_rankings_stay_in_the_conversation_and_smoothing_lifts_the_turn_after_a_match() -> None:
    turns = turns_of(_data())
    emb = cast(OnnxEmbedder, _Axes())
    queries, conv_of = {"q": "camping"}, {"q": "c"}
    qv = np.asarray(_Axes().embed(["camping"]), dtype=np.float32)
    plain = dense_rankings(emb, turns, TURN_RULES["turn alone (today)"], queries, conv_of, qv, None)
    assert plain["q"][0][0] == "c:0" and {d for d, _ in plain["q"]} == {"c:0", "c:1", "c:2", "c:3"}
    smoothed = dense_rankings(emb, turns, TURN_RULES["turn alone (today)"], queries, conv_of, qv, None,
                              smooth=(0.5, 0.0))
    assert smoothed["q"][1] == ("c:1", pytest.approx(0.5))


def test_the_date_prior_lifts_turns_said_in_the_named_month() -> None:
    turns = turns_of(_data())
    emb = cast(OnnxEmbedder, _Axes())
    queries, conv_of = {"q": "what did they say in June?"}, {"q": "d"}
    qv = np.asarray([[0.0, 0.0, 0.0, 1.0]], dtype=np.float32)
    got = dense_rankings(emb, turns, TURN_RULES["turn alone (today)"], queries, conv_of, qv, None, prior=0.2)
    assert got["q"] == [("d:0", pytest.approx(1.2))]
    assert datetime.fromtimestamp(turns[4].said, UTC).month == 6
