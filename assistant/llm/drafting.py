"""Speculative decoding: cheap guesses of the next tokens, checked by the model in one batch.

A *drafter* proposes the next few tokens; the target model evaluates the last sampled token and the drafts in
one ``llama_decode`` with logits for every position, and the longest prefix of drafts that the target's own
greedy pick agrees with is kept, plus the target's own token at the first disagreement (or after the last
draft). Every token emitted is the target's argmax on the logits it was verified on, so at temperature 0 the
text is the target's own; only the numerics of a batched evaluation differ from one token at a time, which
can flip a pick at a near-tie (see docs/benchmarks.md, "Drafting"). Rejected drafts leave the KV cache
(``llama_memory_seq_rm``).

Two drafters (``model.draft``):

- ``LookupDrafter`` ("lookup"): prompt lookup (llama.cpp's ``ngram-simple`` idea): the last few tokens are
  looked up in the prompt and the output so far, and what followed their latest earlier occurrence is the
  draft. Free; it pays for answers that copy from their prompt (summaries, digests, answers from notes).
- ``ModelDrafter`` (a bundled model name or a GGUF path): a smaller model of the same vocabulary drafts
  greedily (Qwen 0.5B for Qwen 1.5B). It costs its own decode per draft token and its own prompt prefill.

Only greedy requests (temperature 0, no grammar) are drafted; sampled ones run token by token.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from assistant.core.errors import ConfigError

LOOKUP = "lookup"
NONE = "none"
LOOKUP_NGRAM = (2, 4)  # n-gram lengths looked up, the longest first
DRAFT_P_MIN = 0.0  # a model draft stops at a token its model gives less than this probability (0: never)


class DraftVocabularyError(ConfigError):
    """The draft model does not share the target's vocabulary: its token ids would mean other text."""


@dataclass
class DraftStats:
    """What drafting did in one generation (for benchmarks and tests)."""

    steps: int = 0  # target evaluations (one per batch of last token + drafts)
    drafted: int = 0  # draft tokens proposed
    accepted: int = 0  # of those, kept

    @property
    def acceptance(self) -> float:
        return self.accepted / self.drafted if self.drafted else 0.0


class Drafter(Protocol):
    def begin(self, prompt: Sequence[int]) -> None:
        """A new generation starts after ``prompt``."""

    def propose(self, history: Sequence[int], k: int) -> list[int]:
        """Up to ``k`` guesses of the tokens after ``history`` (prompt + output so far); may be empty."""

    def close(self) -> None: ...


class Target(Protocol):
    """The model being decoded, as ``speculate`` drives it (assistant.llm.native_loop implements it)."""

    def evaluate(self, tokens: Sequence[int], pos: int) -> None:
        """Evaluate ``tokens`` at positions ``pos``, ``pos + 1``, ... with logits for each (rows 0, 1, ...)."""

    def pick(self, row: int) -> int:
        """The target's greedy token from the logits of ``row`` (penalties applied), noted as sampled."""

    def forget_from(self, pos: int) -> None:
        """Drop the KV cache from ``pos`` on."""


def speculate(
    target: Target, drafter: Drafter, history: list[int], budget: int, k: int, stats: DraftStats
) -> Generator[int, None, None]:
    """The target's next ``budget`` greedy tokens after ``history``, whose last token was picked but not yet
    evaluated; ``history`` grows with every token yielded. Rejected drafts are dropped from the KV cache
    before the token that replaces them is yielded; accepted drafts beyond the last token a caller takes
    stay in the cache (the caller trims it).

    A verified draft costs the target nearly as much as a token of its own on a CPU (docs/benchmarks.md,
    "Drafting"), so the number of drafts asked for follows how many were kept: one more than were kept
    after a miss, twice as many (up to ``k``) after a full match."""
    produced = 0
    length = k  # drafts asked for: one more than were kept after a miss, doubled after a full match
    while produced < budget:
        pos = len(history) - 1
        n = min(length, budget - produced - 1)
        drafts = drafter.propose(history, n) if n > 0 else []
        target.evaluate([history[-1], *drafts], pos)
        stats.steps += 1
        stats.drafted += len(drafts)
        for i in range(len(drafts) + 1):
            tok = target.pick(i)
            history.append(tok)
            produced += 1
            if i < len(drafts):
                if tok == drafts[i]:
                    stats.accepted += 1
                    yield tok
                    continue
                target.forget_from(pos + 1 + i)
                length = i + 1
            elif drafts:
                length = min(k, 2 * length)
            yield tok
            break


class LookupDrafter:
    """Prompt lookup: the tokens that followed the latest earlier occurrence of the last n tokens.

    An index maps every n-gram (n in ``ngram``) of the history to the position after its latest occurrence
    whose next token is known; it is extended as the history grows, so a proposal costs a few dict lookups.
    """

    def __init__(self, ngram: tuple[int, int] = LOOKUP_NGRAM) -> None:
        self.n_min, self.n_max = ngram
        self._index: dict[tuple[int, ...], int] = {}
        self._seen: list[int] = []  # the history indexed so far

    def begin(self, prompt: Sequence[int]) -> None:
        self._index.clear()
        self._seen = []
        self._extend(prompt)

    def _extend(self, history: Sequence[int]) -> None:
        seen = self._seen
        start = len(seen)
        if start and (len(history) < start or history[start - 1] != seen[-1]):
            self._index.clear()  # not a continuation (a caller that did not begin): index afresh
            seen.clear()
            start = 0
        seen.extend(history[start:])
        index = self._index
        # the n-grams ending at end - 1 (whose next token, at end, is known), for each new end
        for end in range(max(start, 1), len(seen)):
            for n in range(self.n_min, self.n_max + 1):
                if end >= n:
                    index[tuple(seen[end - n : end])] = end

    def propose(self, history: Sequence[int], k: int) -> list[int]:
        self._extend(history)
        seen = self._seen
        size = len(seen)
        for n in range(self.n_max, self.n_min - 1, -1):
            if size <= n:
                continue
            at = self._index.get(tuple(seen[size - n :]))
            if at is not None:
                return seen[at : min(size, at + k)]
        return []

    def close(self) -> None:
        self._index.clear()


class ModelDrafter:
    """Greedy drafts from a smaller model of the same vocabulary, on its own llama.cpp context.

    Its KV cache follows the target's history: what it shares with the new history is kept, the rest is
    evaluated (the whole prompt on a new conversation's first draft) before it drafts."""

    def __init__(self, llm: Any, n_batch: int, p_min: float = DRAFT_P_MIN) -> None:
        import llama_cpp as C

        self.llm = llm
        self.ctx = llm.ctx
        self.mem = C.llama_get_memory(self.ctx)
        self.n_vocab = int(C.llama_vocab_n_tokens(llm._model.vocab))
        self.n_batch = max(1, n_batch)
        self.p_min = p_min
        self._seq: list[int] = []  # the tokens in the draft's KV cache
        self._one = (C.llama_token * 1)()

    def begin(self, prompt: Sequence[int]) -> None:
        pass  # the prompt is evaluated at the first proposal, after the target's first token is out

    def _decode(self, tokens: Sequence[int]) -> None:
        import llama_cpp as C

        n = len(tokens)
        arr = (C.llama_token * n)(*tokens)
        if C.llama_decode(self.ctx, C.llama_batch_get_one(arr, n)) != 0:
            raise RuntimeError("the draft model's llama_decode failed")

    def _sync(self, history: Sequence[int]) -> None:
        """Make the draft's context hold ``history`` with the logits of its last token."""
        import llama_cpp as C

        seq = self._seq
        same = 0
        limit = min(len(seq), len(history) - 1)  # the last token is evaluated again for its logits
        while same < limit and seq[same] == history[same]:
            same += 1
        if same < len(seq) and not C.llama_memory_seq_rm(self.mem, 0, same, -1):
            C.llama_memory_clear(self.mem, True)
            same = 0
        del seq[same:]
        for start in range(same, len(history), self.n_batch):
            chunk = history[start : start + self.n_batch]
            self._decode(chunk)
            seq.extend(chunk)

    def propose(self, history: Sequence[int], k: int) -> list[int]:
        import llama_cpp as C
        import numpy as np

        self._sync(history)
        drafts: list[int] = []
        as_array = np.ctypeslib.as_array
        for i in range(k):
            logits = as_array(C.llama_get_logits_ith(self.ctx, -1), shape=(self.n_vocab,))
            tok = int(logits.argmax())
            if self.p_min > 0:
                top = float(logits[tok])
                if 1.0 / float(np.exp(logits - top).sum()) < self.p_min:
                    break
            drafts.append(tok)
            if i < k - 1:
                self._one[0] = tok
                if C.llama_decode(self.ctx, C.llama_batch_get_one(self._one, 1)) != 0:
                    raise RuntimeError("the draft model's llama_decode failed")
                self._seq.append(tok)
        return drafts

    def close(self) -> None:
        close = getattr(self.llm, "close", None)
        if close:
            close()


def vocabulary(vocab: Any) -> list[bytes]:
    """Every token's text in a llama.cpp vocabulary, by id."""
    import llama_cpp as C

    return [C.llama_vocab_get_text(vocab, i) or b"" for i in range(int(C.llama_vocab_n_tokens(vocab)))]


def check_same_vocabulary(target: Sequence[bytes], draft: Sequence[bytes], draft_name: str) -> None:
    """DraftVocabularyError unless both vocabularies have the same tokens with the same ids."""
    if len(target) != len(draft):
        raise DraftVocabularyError(
            f"model.draft = {draft_name!r}: the draft model has {len(draft)} tokens and the model it would draft "
            f"for has {len(target)}; a draft model must share the model's vocabulary (Qwen 0.5B drafts for "
            'Qwen 1.5B; "lookup" drafts for any model)'
        )
    for i, (a, b) in enumerate(zip(target, draft, strict=True)):
        if a != b:
            raise DraftVocabularyError(
                f"model.draft = {draft_name!r}: token {i} is {b!r} in the draft model and {a!r} in the model it "
                'would draft for; a draft model must share the model\'s vocabulary ("lookup" drafts for any model)'
            )


def draft_model_path(spec: str, data_dir: Path) -> Path:
    """The GGUF file ``model.draft`` names: a bundled model's name or a path."""
    from assistant.llm.bundled import BUNDLED
    from assistant.llm.model_file import bundled_model_path, check_gguf

    if spec in BUNDLED:
        return bundled_model_path(data_dir, spec)
    return check_gguf(Path(spec).expanduser())


def load_drafter(
    target_llm: Any, ms: Any, data_dir: Path, llama_kwargs: Callable[[Path, Any], dict[str, Any]]
) -> Drafter | None:
    """The drafter ``model.draft`` asks for (None for "none"); a draft model is loaded with the target's
    context size, threads and batch (``llama_kwargs``, the backend's own), and refused
    (DraftVocabularyError) unless it shares the vocabulary."""
    spec = str(ms.draft)
    if spec == NONE:
        return None
    if spec == LOOKUP:
        return LookupDrafter()
    from llama_cpp import Llama

    path = draft_model_path(spec, data_dir)
    draft = Llama(**llama_kwargs(path, ms))
    try:
        check_same_vocabulary(vocabulary(target_llm._model.vocab), vocabulary(draft._model.vocab), spec)
    except DraftVocabularyError:
        draft.close()
        raise
    return ModelDrafter(draft, int(ms.n_batch))


def fill_batch(batch: Any, tokens: Sequence[int], pos: int) -> None:
    """Write ``tokens`` at positions ``pos``... into a ``llama_batch_init`` batch, logits for every one."""
    batch.n_tokens = len(tokens)
    tok, p, n_seq, seq, out = batch.token, batch.pos, batch.n_seq_id, batch.seq_id, batch.logits
    for i, t in enumerate(tokens):
        tok[i] = t
        p[i] = pos + i
        n_seq[i] = 1
        seq[i][0] = 0
        out[i] = 1
