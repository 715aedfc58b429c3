"""Speculative decoding (assistant.llm.drafting) on a fake target: the tokens are the target's own greedy
tokens whatever the drafts, rejected drafts leave the KV cache, and the lookup drafter proposes what
followed the latest earlier occurrence of the last n-gram."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import pytest

from assistant.config import ModelSettings
from assistant.llm.drafting import (
    DraftStats,
    DraftVocabularyError,
    LookupDrafter,
    check_same_vocabulary,
    speculate,
)

Rule = Callable[[Sequence[int]], int]


def fibonacci(h: Sequence[int]) -> int:
    """Periodic (Fibonacci mod 11): the lookup drafter finds its past."""
    return (h[-1] + h[-2]) % 11


def mixing(h: Sequence[int]) -> int:
    """Rarely periodic: most drafts of the lookup drafter are wrong or missing."""
    return (h[-1] * 31 + h[-2] * 17 + len(h) * 7) % 97


class FakeTarget:
    """A model whose greedy token after a history is ``rule(history)``, with a KV cache of tokens."""

    def __init__(self, rule: Rule, prompt: Sequence[int]) -> None:
        self.rule = rule
        self.kv: list[int] = list(prompt)
        self.rows: list[int] = []  # next-token logits of the last evaluated batch, as the greedy token
        self.evaluations: list[int] = []  # batch sizes

    def evaluate(self, tokens: Sequence[int], pos: int) -> None:
        assert pos == len(self.kv), "a batch must continue the KV cache"
        self.evaluations.append(len(tokens))
        self.rows = []
        for t in tokens:
            self.kv.append(t)
            self.rows.append(self.rule(self.kv))

    def pick(self, row: int) -> int:
        if row == -1 and not self.rows:  # the prompt's logits
            return self.rule(self.kv)
        return self.rows[row]

    def forget_from(self, pos: int) -> None:
        assert pos <= len(self.kv)
        del self.kv[pos:]


class Oracle:
    """Drafts the true continuation, with each draft token wrong with probability ``error``."""

    def __init__(self, rule: Rule, error: float, seed: int = 0) -> None:
        self.rule = rule
        self.error = error
        self.rng = random.Random(seed)

    def begin(self, prompt: Sequence[int]) -> None:
        pass

    def propose(self, history: Sequence[int], k: int) -> list[int]:
        h = list(history)
        out = []
        for _ in range(k):
            t = self.rule(h)
            if self.rng.random() < self.error:
                t = (t + 1) % 101
            out.append(t)
            h.append(t)
        return out

    def close(self) -> None:
        pass


def reference(rule: Rule, prompt: Sequence[int], n: int) -> list[int]:
    h = list(prompt)
    for _ in range(n):
        h.append(rule(h))
    return h[len(prompt) :]


def run(
    rule: Rule, drafter: object, prompt: list[int], n: int, k: int
) -> tuple[list[int], FakeTarget, DraftStats]:
    target = FakeTarget(rule, prompt)
    drafter.begin(prompt)  # type: ignore[attr-defined]
    first = target.pick(-1)
    history = [*prompt, first]
    out = [first]
    stats = DraftStats()
    for tok in speculate(target, drafter, history, n - 1, k, stats):  # type: ignore[arg-type]
        out.append(tok)
        assert history[-1] == tok
        # the cache holds the history but its last token, plus at most drafts the target agreed with
        assert target.kv[: len(history) - 1] == history[:-1]
    return out, target, stats


@pytest.mark.parametrize("rule", [fibonacci, mixing])
@pytest.mark.parametrize("k", [1, 3, 8])
@pytest.mark.parametrize("error", [0.0, 0.3, 1.0])
def test_drafted_tokens_are_the_targets_greedy_tokens(rule: Rule, k: int, error: float) -> None:
    prompt = [3, 5, 8, 1, 9, 4]
    for n in (1, 2, 7, 40):
        out, target, stats = run(rule, Oracle(rule, error, seed=n), prompt, n, k)
        assert out == reference(rule, prompt, n)
        assert stats.accepted <= stats.drafted
        if error == 0.0 and n > 1:
            assert stats.accepted == stats.drafted  # a perfect drafter is always kept
        if error == 1.0:
            assert stats.accepted == 0
        assert max(target.evaluations, default=1) <= k + 1
        assert len(out) == n


def test_a_rejected_draft_leaves_the_kv_cache_before_the_next_token_is_taken() -> None:
    prompt = [3, 5, 8, 1]
    target = FakeTarget(mixing, prompt)
    history = [*prompt, target.pick(-1)]
    stats = DraftStats()
    gen = speculate(target, Oracle(mixing, 1.0), history, 10, 4, stats)
    tok = next(gen)  # every draft was wrong: the target's own token, the drafts dropped
    assert target.kv == history[:-1]
    assert tok == mixing(history[:-1])
    gen.close()


@pytest.mark.parametrize("k", [2, 5])
def test_lookup_drafting_keeps_the_greedy_tokens_and_accepts_a_periodic_answer(k: int) -> None:
    prompt = [1, 1, 2, 3, 5, 8, 2, 10, 1, 0]
    n = 60
    out, target, stats = run(fibonacci, LookupDrafter(), prompt, n, k)
    assert out == reference(fibonacci, prompt, n)
    assert stats.acceptance > 0.8
    assert stats.steps < n / 2  # most steps keep several tokens

    out, _, stats = run(mixing, LookupDrafter(), prompt, n, k)
    assert out == reference(mixing, prompt, n)


def test_lookup_proposes_what_followed_the_latest_earlier_occurrence() -> None:
    d = LookupDrafter(ngram=(2, 3))
    d.begin([7, 1, 2, 3, 4, 9, 1, 2, 5, 6])
    # the latest (1, 2) was followed by 5, 6
    assert d.propose([7, 1, 2, 3, 4, 9, 1, 2, 5, 6, 1, 2], 3) == [5, 6, 1]
    assert d.propose([7, 1, 2, 3, 4, 9, 1, 2, 5, 6, 1, 2, 3], 2) == [4, 9]  # (1, 2, 3), the longest, first
    assert d.propose([7, 1, 2, 3, 4, 9, 1, 2, 5, 6, 1, 2, 3, 8], 4) == []  # (3, 8) never seen
    assert d.propose([7, 1, 2, 3, 4, 9, 1, 2, 5, 6, 1, 2, 3, 8, 3], 4) == []  # unigrams are not looked up


def test_lookup_indexes_afresh_when_the_history_is_not_a_continuation() -> None:
    d = LookupDrafter(ngram=(2, 2))
    d.begin([1, 2, 3, 1, 2])
    assert d.propose([1, 2, 3, 1, 2], 5) == [3, 1, 2]
    assert d.propose([4, 5, 6, 4, 5], 5) == [6, 4, 5]  # another conversation, without begin


def test_a_draft_vocabulary_must_be_the_targets() -> None:
    words = [b"<s>", b"a", b"b", b"c"]
    check_same_vocabulary(words, list(words), "qwen0.5b")
    with pytest.raises(DraftVocabularyError, match="4 tokens.*5"):
        check_same_vocabulary([*words, b"d"], words, "smollm2")
    with pytest.raises(DraftVocabularyError, match="token 2 is b'x'"):
        check_same_vocabulary(words, [b"<s>", b"a", b"x", b"c"], "other.gguf")


def test_draft_settings() -> None:
    assert ModelSettings().draft in ("none", "lookup", "qwen0.5b")
    assert ModelSettings(draft="lookup", draft_tokens=4).draft_tokens == 4
    with pytest.raises(ValueError):
        ModelSettings(draft_tokens=0)
