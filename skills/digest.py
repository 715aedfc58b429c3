"""`digest`: new feed items since the last digest, grouped by feed.

Every line of the digest is built by code from a real entry (its title and link); items are marked
reported only after the digest was delivered, so none is repeated and none is lost. The model may add a
one-sentence overview, which is kept only if it names nothing (no proper name, no number, no link) that
is not in the titles.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import Field

from assistant.core.errors import BadRequest
from assistant.core.text import clean_text, clean_title, data_rule, quoted_block, safe_link
from assistant.llm.types import ChatMessage, GenerationParams
from assistant.skillkit.api import SkillContext, SkillResult, skill

CONSUMER = "digest"
_TOKEN = re.compile(r"[\w'-]+")
_ALLOWED_CAPS = {
    "the",
    "a",
    "an",
    "today",
    "your",
    "feeds",
    "news",
    "this",
    "these",
    "new",
    "in",
    "and",
    "also",
    "there",
    "here",
    "it",
    "i",
    "overview",
    "several",
    "some",
    "other",
    "many",
}


def overview_is_grounded(text: str, titles: Sequence[str]) -> bool:
    """No link, at most two sentences and 300 characters, and every capitalized word or number in it
    (a name, a figure: what a model invents) appears in the titles; a few common words excepted."""
    if not text or len(text) > 300 or "http" in text or "www." in text:
        return False
    if len(re.findall(r"[.!?](?:\s|$)", text)) > 2:
        return False
    known = {t.lower().strip("'-") for t in _TOKEN.findall(" ".join(titles))}
    for token in _TOKEN.findall(text):
        token = token.strip("'-")
        if not token or not (token[0].isupper() or token[0].isdigit()):
            continue
        if token.lower() not in known and token.lower() not in _ALLOWED_CAPS:
            return False
    return True


def write_overview(ctx: SkillContext, titles: list[str], max_tokens: int = 60) -> str | None:
    """The model's one-sentence overview of the titles, or None when there is no model or it fails the check."""
    if ctx.worker is None or not titles:
        return None
    block = quoted_block("TITLES", titles[:20])
    system = (
        "You summarize news titles for a daily digest. "
        f"{data_rule(block.marker)} Write one short sentence saying what the titles are about overall. "
        "Mention only things named in the titles."
    )
    completion = ctx.worker.generate_text(
        [ChatMessage("system", system), ChatMessage("user", f"{block.text}\n\nOne-sentence overview:\n")],
        GenerationParams(max_tokens=max_tokens, temperature=0.3),
    )
    text = clean_text(completion.text.strip().split("\n", 1)[0], limit=400)
    if block.marker.split("-")[-1] in text:
        return None
    return text if overview_is_grounded(text, titles) else None


@skill(
    "digest",
    phrases=[
        "give me the digest",
        "read me the digest",
        "give me my daily digest",
        "read me the headlines",
        "what are the headlines",
        "what's in the news",
        "read the news",
    ],
    schedule="every day at 18:00",
    untrusted_output=True,  # made of feed headlines: stored and recalled only as untrusted data
)
def digest(
    ctx: SkillContext,
    limit: Annotated[int, Field(ge=1)] = 50,
    overview: bool = True,
    max_tokens: Annotated[int, Field(ge=1, le=512)] = 60,
) -> SkillResult:
    """Summarize new items from subscribed feeds since the last digest, grouped by feed.

    Args:
        limit: at most this many items (the rest wait for the next digest)
        overview: let the model add a checked one-sentence overview
        max_tokens: length limit of the overview, in tokens
    """
    feeds = ctx.feeds
    if feeds is None:
        raise BadRequest(
            "the digest skill needs feeds, which are not enabled in this daemon", code="no_feeds"
        )
    entries = list(feeds.unreported_entries(CONSUMER, limit=limit))
    if not entries:
        return SkillResult(
            "No new feed items since the last digest.",
            title="Digest: nothing new",
            data={"groups": [], "count": 0},
            notify=False,
        )

    groups: dict[Any, dict[str, Any]] = {}
    for entry in entries:
        group = groups.setdefault(
            entry.feed_id,
            {
                "feed_id": entry.feed_id,
                "feed": clean_text(entry.feed_title, 80) or clean_text(entry.feed_url, 120),
                "items": [],
            },
        )
        group["items"].append(
            {
                "key": entry.key,
                "title": clean_title(entry.title) or "(untitled)",
                "link": safe_link(entry.link, entry.feed_url),
                "published": entry.published.isoformat() if entry.published else None,
            }
        )

    lines: list[str] = []
    titles = [item["title"] for g in groups.values() for item in g["items"]]
    summary = write_overview(ctx, titles, max_tokens) if overview else None
    if summary:
        lines += [summary, ""]
    for group in groups.values():
        n = len(group["items"])
        lines.append(f"{group['feed']} ({n} new)")
        lines += [f"- {item['title']} — {item['link'] or '(no link)'}" for item in group["items"]]
        lines.append("")
    keys = [e.key for e in entries]

    def mark_reported() -> None:
        feeds.mark_reported(CONSUMER, keys)

    return SkillResult(
        "\n".join(lines).strip(),
        title=f"Digest: {len(entries)} new item{'s' if len(entries) != 1 else ''} from {len(groups)} "
        f"feed{'s' if len(groups) != 1 else ''}",
        data={"groups": list(groups.values()), "count": len(entries), "overview": summary},
        on_delivered=mark_reported,
    )
