"""`seuss`: the latest headlines explained in the style of Dr. Seuss, one short verse per headline.

A cascade per headline, cheap and reliable steps first, the model for style:

1. a prompt that shows the shape: three fixed example headlines with short verses (as earlier turns),
   then the headline as data: a quoted JSON string inside a delimited block with an unguessable marker;
2. the output constrained to the shape by llama.cpp grammars (``skills._verse``), one per try in turn: a
   couplet whose first line ends on a word of the headline and whose second ends on a common word the
   dictionary says rhymes with it (``rhyme_grammar``), or one that ends on any rhyming pair of common words
   (``pair_grammar``); lines of whole words, no links, no labels. A remote backend ignores grammars and
   the checks alone remain;
3. checks by code (``skills._verse.check_verse``): line count and length, every word in the dictionary or
   in the headline (two words the model glued together split first), no number the headline does not
   have, syllables per line, the paired lines' end words rhyme by the CMU Pronouncing
   Dictionary, the headline's subject is named, nothing of the prompt or of an instruction planted in the
   headline is repeated;
4. several tries with different seeds inside a time budget, keeping the best verse that passed;
5. else a fallback verse built by code from the headline's own words and a dictionary rhyme for one of
   them (``skills._verse.fallback_verse``), different for each headline.

The structure of the answer (which headlines, one verse each, their source links) is built by code, so an
instruction hidden in a headline cannot change what the skill does.
"""

from __future__ import annotations

import json
import time
import zlib
from typing import Annotated, Any

from pydantic import Field

from assistant.core.errors import BadRequest
from assistant.core.text import clean_text, clean_title, data_rule, quoted_block, safe_link
from assistant.llm.types import ChatMessage, GenerationParams
from assistant.skillkit.api import SkillContext, SkillResult, skill
from skills._verse import (
    anchors,
    check_verse,
    fallback_verse,
    pair_grammar,
    rhyme_grammar,
    with_headline_words,
)

# Written for this project: the shape shown to the model (two couplets and one four-line verse).
EXAMPLES: tuple[tuple[str, str], ...] = (
    (
        "Library lets children borrow fishing rods",
        "The library lends out more than books,\nnow kids can borrow rods and hooks!",
    ),
    (
        "Heavy rain floods streets across the city",
        "The rain came down, it poured and poured,\nthe streets turned into streams that roared!",
    ),
    (
        "Scientists discover a new species of frog",
        "The scientists went to look in a bog,\nand there they found a brand-new frog!\n"
        "It hops, it sings, it is small and green,\nthe strangest frog they have ever seen!",
    ),
)
ASK = "A Dr. Seuss verse that explains this headline:"


def _data(marker: str, title: str) -> str:
    return f"<<<{marker}>>>\n1. {json.dumps(title, ensure_ascii=False)}\n<<<END {marker}>>>\n\n{ASK}"


def prompt_for(title: str) -> tuple[list[ChatMessage], str, str]:
    """The messages for one headline, the block's marker and the text of the prompt a verse must not repeat."""
    block = quoted_block("HEADLINE", [title])
    system = (
        "You write short, playful rhyming verses in the style of Dr. Seuss that explain news headlines. "
        f"{data_rule(block.marker)} Write two to four short lines that say what happened; the last words of "
        "the lines rhyme in pairs. No title, no links, no notes."
    )
    messages = [ChatMessage("system", system)]
    for headline, verse in EXAMPLES:
        messages += [ChatMessage("user", _data(block.marker, headline)), ChatMessage("assistant", verse)]
    messages.append(ChatMessage("user", f"{block.text}\n\n{ASK}"))
    prompt = "\n".join([system, ASK, *(verse for _, verse in EXAMPLES)])
    return messages, block.marker, prompt


def grammars(title: str) -> list[str]:
    """The grammars of the tries, in turn: a couplet that rhymes on a word of the headline (the last one
    that has a rhyme first), then one that ends on any rhyming pair of common words, and so on."""
    on_title = [g for w in anchors(title)[:2] if (g := rhyme_grammar(w)) is not None]
    shapes = [on_title[0], pair_grammar(), *on_title[1:]] if on_title else [pair_grammar()]
    return [with_headline_words(g, title) for g in shapes]


def write_verse(
    ctx: SkillContext,
    title: str,
    max_tokens: int = 64,
    *,
    tries: int = 4,
    seconds: float = 8.0,
    grammar: bool = True,
) -> tuple[str, bool, int]:
    """A verse for one headline and whether the model wrote it, with the number of model calls: the best
    model verse that passed the checks within ``tries`` and ``seconds``, else the headline's fallback."""
    if ctx.worker is None:
        return fallback_verse(title), False, 0
    messages, marker, prompt = prompt_for(title)
    nonce = marker.split("-")[-1]
    base = zlib.crc32(title.encode("utf-8"))
    best = None
    start = time.monotonic()
    calls = 0
    shapes = grammars(title) if grammar else [None]
    for i in range(tries):
        if i and time.monotonic() - start >= seconds:
            break
        calls += 1
        gbnf = shapes[i % len(shapes)]
        completion = ctx.worker.generate_text(
            messages,
            GenerationParams(
                max_tokens=max_tokens,
                temperature=0.8,
                seed=(base + 7919 * i) & 0x7FFFFFFF,
                grammar=gbnf if grammar else None,
            ),
        )
        verdict = check_verse(completion.text, title, prompt)
        if verdict.verse is None or nonce in verdict.verse:
            continue
        if best is None or verdict.score > best.score:
            best = verdict
        if verdict.perfect:
            break
    if best is None or best.verse is None:
        return fallback_verse(title), False, calls
    return best.verse, True, calls


@skill(
    "seuss",
    phrases=["tell me a seuss story"],
    schedule="every day at 8:00",
    untrusted_output=True,  # made of feed headlines: stored and recalled only as untrusted data
)
def seuss(
    ctx: SkillContext,
    count: Annotated[int, Field(ge=1, le=10)] = 3,
    max_tokens: Annotated[int, Field(ge=1, le=512)] = 64,
    tries: Annotated[int, Field(ge=1, le=10)] = 4,
    seconds: Annotated[float, Field(ge=0, le=120)] = 8.0,
    grammar: bool = True,
) -> SkillResult:
    """Explain the latest headlines in the style of Dr. Seuss, one short verse per headline with its link.

    Args:
        count: how many headlines
        max_tokens: length limit of each verse, in tokens
        tries: model calls per headline at most (different seeds), keeping the best verse that passes
        seconds: time budget per headline: no new try starts after it (the first try always runs)
        grammar: constrain the model's output to the verse shape (embedded model only)
    """
    if ctx.feeds is None:
        raise BadRequest("the seuss skill needs feeds, which are not enabled in this daemon", code="no_feeds")
    entries = ctx.feeds.latest_entries(limit=count)[:count]
    if not entries:
        return SkillResult(
            "No headlines yet: subscribe to a news feed first (assistant feeds add URL).",
            title="Seuss: no headlines",
            data={"headlines": []},
            notify=False,
        )
    blocks: list[str] = []
    items: list[dict[str, Any]] = []
    for i, entry in enumerate(entries, 1):
        title = clean_title(entry.title) or "(untitled)"
        link = safe_link(entry.link, entry.feed_url)
        verse, by_model, calls = write_verse(
            ctx, title, max_tokens, tries=tries, seconds=seconds, grammar=grammar
        )
        source = clean_text(entry.feed_title, 80) or clean_text(entry.feed_url, 80)
        blocks.append(f'{i}. "{title}" ({source})\n{verse}\nSource: {link or "(no link)"}')
        items.append(
            {
                "key": entry.key,
                "title": title,
                "link": link,
                "feed": source,
                "verse": verse,
                "by_model": by_model,
                "source": "model" if by_model else "fallback",
                "tries": calls,
            }
        )
    return SkillResult(
        "\n\n".join(blocks),
        title=f"Seuss: {len(entries)} headline{'s' if len(entries) != 1 else ''}",
        data={"headlines": items},
    )
