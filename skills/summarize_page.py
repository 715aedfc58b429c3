"""`summarize` and `eli5`: a web page summarized by the model, or explained in simple words.

The daemon's pages part (``ctx.pages``) fetches the page under the feeds' address policy, extracts its
main text and summarizes it, in parts when it does not fit the model's context. This skill cites the
page's URL and title itself (facts from code, the wording from the model), says when the summary is the
page's own lead sentences because no summary by the model kept to the page (every number, date and name
checked against the page, assistant.pages.grounding), and stores the summary as an untrusted memory
whose metadata holds the URL and title. Scheduled ("summarize this page every morning"), the result goes
out as a notification as well.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from assistant.core.errors import BadRequest
from assistant.core.recall import UNTRUSTED
from assistant.skillkit.api import SkillContext, SkillResult, skill

_HEADINGS = {"summary": "Summary of", "eli5": "Explained simply:"}


def url_from_phrase(url: str) -> dict[str, str] | None:
    """A phrase's captured words as the ``url`` argument when they are one http(s) URL, else None."""
    url = url.strip().strip("<>")
    if url.lower().startswith(("http://", "https://")) and " " not in url:
        return {"url": url}
    return None


def run_page_skill(ctx: SkillContext, name: str, style: str, url: str, max_tokens: int | None,
                   remember: bool) -> SkillResult:  # fmt: skip
    """Summarize ``url`` in ``style`` through ``ctx.pages``; cite it; store the summary as a memory."""
    if ctx.pages is None:
        raise BadRequest(
            f"the {name} skill needs pages, which are turned off: set [pages] enabled = true", code="no_pages"
        )
    url = url.strip().strip("<>")
    found = ctx.pages.summarize(url, "eli5" if style == "eli5" else "summary", max_tokens=max_tokens)
    title = found.title or "(untitled page)"
    cite = f"{_HEADINGS[style]} “{title}” — {found.url}"
    extent = f"{found.words:,} words" + (f", read in {found.parts} parts" if found.parts > 1 else "")
    if 0 < found.words_read < found.words:
        extent += f", the first {found.words_read:,} read"
    if found.path == "extractive":
        body = f"No summary by the model kept to the page; its lead sentences: {found.text}"
    else:
        body = found.text
    if found.path == "retry":
        extent += "; a plainer second try kept to the page"
    text = f"{cite}\n{body}\n({extent})"
    if remember and ctx.memory is not None:
        ctx.memory.add(
            text,
            source=f"skill:{name}",
            metadata={"url": found.url, "title": title, "style": style},
            provenance=UNTRUSTED,
        )
    return SkillResult(
        text,
        title=f"{_HEADINGS[style]} {title}"[:200],
        data={
            "url": found.url,
            "title": found.title,
            "summary": found.text,
            "style": style,
            "words": found.words,
            "words_read": found.words_read,
            "parts": found.parts,
            "levels": found.levels,
            "fallback": found.fallback,
            "path": found.path,  # model, retry or extractive: which text kept to the page
            "unsupported": list(found.unsupported),  # what the first summary said that the page does not
            "prompt_tokens": found.prompt_tokens,  # of each model call (map steps, then reduce)
        },
    )


@skill(
    "summarize",
    phrases=["summarize {url}", "summarise {url}", "summarize the page {url}", "tldr {url}"],
    from_phrase=url_from_phrase,
    schedule="every day at 07:00",
    remember=False,  # the skill stores its summary itself, with the URL (every run, not only scheduled)
    untrusted_output=True,  # made from a fetched page: stored and recalled only as untrusted data
)
def summarize(
    ctx: SkillContext,
    url: str,
    max_tokens: Annotated[int | None, Field(ge=16, le=2048)] = None,
    remember: bool = True,
) -> SkillResult:
    """Summarize a web page (fetched now), citing its title and URL.

    Args:
        url: the page's address (http or https)
        max_tokens: length limit of the summary, in tokens (default: pages.summary_tokens)
        remember: store the summary as a memory (untrusted, with the URL)
    """
    return run_page_skill(ctx, "summarize", "summary", url, max_tokens, remember)


@skill(
    "eli5",
    phrases=["eli5 {url}", "explain {url} simply", "explain {url} like i'm five"],
    from_phrase=url_from_phrase,
    schedule="every day at 07:00",
    remember=False,
    untrusted_output=True,
)
def eli5(
    ctx: SkillContext,
    url: str,
    max_tokens: Annotated[int | None, Field(ge=16, le=2048)] = None,
    remember: bool = True,
) -> SkillResult:
    """Explain a web page in simple words, as to a ten-year-old, citing its title and URL.

    Args:
        url: the page's address (http or https)
        max_tokens: length limit of the explanation, in tokens (default: pages.summary_tokens)
        remember: store the explanation as a memory (untrusted, with the URL)
    """
    return run_page_skill(ctx, "eli5", "eli5", url, max_tokens, remember)
