"""`seuss`: the latest headlines explained in the style of Dr. Seuss, one short verse per headline.

Headlines are untrusted: each goes to the model alone, as a quoted JSON string inside a delimited block,
and the model's verse is cleaned (no links, no fake "Source:" lines, at most four short lines). The
structure of the answer (which headlines, one verse each, their source links) is built by code, so an
instruction hidden in a headline cannot change what the skill does.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field

from assistant.core.errors import BadRequest
from assistant.core.text import clean_text, clean_title, data_rule, quoted_block, safe_link, strip_links
from assistant.llm.types import ChatMessage, GenerationParams
from assistant.skillkit.api import SkillContext, SkillResult, skill

MAX_LINES = 4
MAX_LINE_CHARS = 90
_STOP = {
    "this",
    "that",
    "with",
    "from",
    "have",
    "will",
    "they",
    "their",
    "about",
    "after",
    "over",
    "into",
    "more",
    "than",
    "what",
    "when",
    "were",
    "been",
    "says",
    "said",
    "your",
    "just",
    "make",
    "like",
}
_GENERIC = {"headline", "headlines", "news", "verse", "verses", "rhyme", "rhymes", "story", "stories"}
_WORD = re.compile(r"[a-z0-9']{4,}")
_BAD_LINE = re.compile(r"^\s*(source|link|headline|verse|note|<<<|---|\d+[.)])", re.IGNORECASE)


def content_words(text: str) -> set[str]:
    return {w.strip("'") for w in _WORD.findall(text.lower())} - _STOP


def _ngrams(text: str, n: int = 4) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z0-9']+", text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def clean_verse(raw: str, title: str, instructions: str = "") -> str | None:
    """The model's verse, or None when it breaks the rules (links, labels, long lines) or is not about
    the headline. Only the first stanza is kept."""
    if strip_links(raw) != raw:
        return None  # it was told not to write links: a link means it followed something else
    lines: list[str] = []
    for line in raw.splitlines():
        line = clean_text(line, limit=MAX_LINE_CHARS * 2).strip(' -*•#"')
        if not line:
            if lines:
                break  # one stanza only
            continue
        if _BAD_LINE.match(line) or len(line) > MAX_LINE_CHARS:
            return None
        lines.append(line)
        if len(lines) == MAX_LINES:
            break
    if not lines:
        return None
    verse = "\n".join(lines)
    if "<" in verse or ">" in verse:
        return None  # markup or pieces of the prompt's delimiters
    if instructions and _ngrams(verse) & _ngrams(instructions):
        return None  # it repeats the instructions instead of writing a verse
    # It must be about the headline: share at least one content word with it.
    if not content_words(verse) & (content_words(title) - _GENERIC):
        return None
    return verse


def fallback_verse(title: str) -> str:
    """Used when the model's verse fails the checks (the headline is shown above it anyway)."""
    return "A headline came in from far away,\nread it above: that's the news of the day!"


def write_verse(ctx: SkillContext, title: str, max_tokens: int = 64) -> tuple[str, bool]:
    """A verse for one headline: the model's when it passes the checks, else a template."""
    if ctx.worker is None:
        return fallback_verse(title), False
    block = quoted_block("HEADLINE", [title])
    system = (
        "You write short, playful rhyming verses in the style of Dr. Seuss about news headlines. "
        f"{data_rule(block.marker)} Write two to four short rhyming lines about the headline. "
        "No title, no links, no notes."
    )
    user = f"{block.text}\n\nA Dr. Seuss verse about this headline:\n"
    completion = ctx.worker.generate_text(
        [ChatMessage("system", system), ChatMessage("user", user)],
        GenerationParams(max_tokens=max_tokens, temperature=0.8),
    )
    verse = clean_verse(completion.text, title, instructions=f"{system}\n{user.rsplit(block.text, 1)[-1]}")
    if verse is None or block.marker.split("-")[-1] in verse:
        return fallback_verse(title), False
    return verse, True


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
) -> SkillResult:
    """Explain the latest headlines in the style of Dr. Seuss, one short verse per headline with its link.

    Args:
        count: how many headlines
        max_tokens: length limit of each verse, in tokens
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
        verse, by_model = write_verse(ctx, title, max_tokens)
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
            }
        )
    return SkillResult(
        "\n\n".join(blocks),
        title=f"Seuss: {len(entries)} headline{'s' if len(entries) != 1 else ''}",
        data={"headlines": items},
    )
