"""Content words two texts share: what the recall floor counts (does a memory's own text say something the
question asks about?) and what feedback counts (did the answer use a memory it was given?).

Content words are a text's words, lowercased, without English stop words (the NLTK list the keyword index
uses, plus chat fillers such as "yes" and "okay"), stemmed (Snowball: "peanuts" and "peanut", "walking" and
"walk" are one word). Numbers count whole ("4821", "7.30"). This is deliberately plain: it has to decide
cheaply, on every chat turn and every rating, whether a short answer repeats a fact of a short note.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

# Numbers with their inner separators ("7.30", "1,200", "020-7946") stay one word; other words split on
# anything that is not a letter or digit.
_WORD_RE = re.compile(r"\d+(?:[.,:/-]\d+)*|[^\W\d_]+(?:'[^\W\d_]+)?|\w+", re.UNICODE)
_FILLERS = frozenset(
    "yes yeah yep ok okay sure please thanks thank hi hello well also really just like would could "
    "can may might one get got know think tell told said say says let lets us i'm i've it's that's "
    "many much lot lots thing things something anything everything nothing "
    "there's what's don't doesn't didn't isn't aren't wasn't won't can't".split()
)


@functools.cache
def stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    return frozenset(STOPWORDS_EN_PLUS) | _FILLERS


def _stemmer() -> Any:
    import Stemmer  # PyStemmer (Snowball), as the keyword side's bm25s uses; one per call: not thread-safe

    return Stemmer.Stemmer("english")


def content_words(text: str) -> frozenset[str]:
    """The content words of ``text`` (see the module's docstring)."""
    stop = stopwords()
    numbers: set[str] = set()
    words: list[str] = []
    for raw in _WORD_RE.findall(text.lower()):
        word = raw.replace("\u2019", "'")
        if word[0].isdigit():
            numbers.add(word)
        elif word not in stop and len(word) > 1:
            words.append(word.removesuffix("'s"))
    if not words:
        return frozenset(numbers)
    return frozenset(numbers | {w for w in _stemmer().stemWords(words) if w not in stop})


def shared_beyond(a: str, b: str, besides: Iterable[str] = ()) -> frozenset[str]:
    """Content words ``a`` and ``b`` share that none of ``besides`` holds: what an answer (``a``) took from
    a memory (``b``) rather than from the question (``besides``)."""
    common = content_words(a) & content_words(b)
    for text in besides:
        if not common:
            break
        common -= content_words(text)
    return common


def used_memory(question: str, answer: str, memory: str) -> bool:
    """Whether ``answer`` used ``memory``: it repeats at least one content word (a name, a number, a thing)
    the memory holds and the question does not. "No" and "I have no additional information" use nothing;
    "He is allergic to peanuts" uses "Tomas is allergic to peanuts" for "Is Tomas allergic to anything?"."""
    return bool(shared_beyond(answer, memory, (question,)))
