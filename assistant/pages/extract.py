"""A web page's main text: hidden elements dropped, then trafilatura (``favor_precision``, no comments).

Chosen by measurement (``benchmarks/bench_extract.py``, docs/benchmarks.md, docs/pages.md): on the
181 hand-labelled pages of the article-extraction benchmark, through this path, trafilatura scores F1 0.963
against readability-lxml's 0.953 (each library alone with its defaults: 0.953 and 0.954). Falling back to
readability-lxml when trafilatura finds much less text than it gains nothing at a ratio chosen beforehand
(a tenth) and less than one standard deviation at the best ratio found on these same pages, for twice the
time: the daemon uses trafilatura alone. ``readability`` stays selectable for the benchmark (it needs
readability-lxml, a development dependency).

Hidden text is dropped before either library sees the page: elements with the ``hidden`` attribute,
``aria-hidden="true"``, an inline style that hides them (``display:none``, ``visibility:hidden``,
``font-size:0``, ``opacity:0``), ``<template>``, and what the page's ``<style>`` rules or inline styles hide
(``display:none`` by class, off screen, a 1px font, text the colour of its background:
``assistant.pages.hidden_css``). A reader of the page does not see that text, so
it must not reach the model either (it is the usual place to plant instructions for an assistant).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import lxml.html
from lxml.etree import ParserError

Extractor = Literal["trafilatura", "readability"]
EXTRACTORS: tuple[Extractor, ...] = ("trafilatura", "readability")

_HIDING_STYLE = re.compile(
    r"(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*(?:hidden|collapse)|font-size\s*:\s*0(?:\.0*)?"
    r"(?:px|em|rem|pt|%)?\s*(?:!important)?\s*(?:;|$)|opacity\s*:\s*0(?:\.0*)?\s*(?:!important)?\s*(?:;|$))",
    re.IGNORECASE,
)
_HIDDEN_XPATH = "//*[@hidden] | //*[@aria-hidden='true'] | //template | //*[@style]"
_BLOCKS = {
    "p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "section",
    "article", "header", "footer", "table", "hr", "dd", "dt", "figure", "figcaption", "ul", "ol",
}  # fmt: skip


@dataclass(frozen=True)
class Extracted:
    title: str
    text: str  # paragraphs separated by newlines; may be empty
    extractor: str  # which library's text this is


def parse_html(markup: bytes | str) -> lxml.html.HtmlElement | None:
    """The document tree (encoding from the bytes' declaration, else detected); None when it has none."""
    from trafilatura import load_html

    tree = load_html(markup)
    return tree if isinstance(tree, lxml.html.HtmlElement) else None


def drop_hidden(tree: lxml.html.HtmlElement) -> int:
    """Remove the elements a reader does not see (in place); returns how many."""
    from assistant.pages.hidden_css import hidden_elements

    dropped = 0
    for el in hidden_elements(tree):  # by the page's <style> rules and inline styles: found before any goes
        if el.getparent() is not None:
            el.drop_tree()
            dropped += 1
    for el in list(tree.xpath(_HIDDEN_XPATH)):
        if el.tag != "template":
            style = el.get("style")
            hidden_attr = el.get("hidden") is not None or el.get("aria-hidden") == "true"
            if not hidden_attr and not (style and _HIDING_STYLE.search(style)):
                continue
        if el.getparent() is None:
            continue
        el.drop_tree()  # keeps the tail text, which belongs to the parent
        dropped += 1
    return dropped


def title_of(tree: lxml.html.HtmlElement) -> str:
    """The page's title: og:title, else <title>, else the first <h1> (raw; callers clean it)."""
    for xpath in ("//meta[@property='og:title']/@content", "//title//text()", "//h1//text()"):
        found = " ".join(str(t) for t in tree.xpath(xpath)).strip()
        if found:
            return found
    return ""


def with_trafilatura(tree: lxml.html.HtmlElement, url: str | None = None) -> str:
    from trafilatura import extract

    return extract(tree, url=url, include_comments=False, favor_precision=True) or ""


def with_readability(tree: lxml.html.HtmlElement) -> str:
    from readability import Document

    try:
        summary = Document(tree).summary(html_partial=True)
    except Exception:  # noqa: BLE001 - readability raises bare Exception subclasses on odd pages
        return ""
    if not summary.strip():
        return ""
    try:
        article = lxml.html.fragment_fromstring(summary, create_parent="div")
    except ParserError:
        return ""
    return block_text(article)


def block_text(tree: lxml.html.HtmlElement) -> str:
    """The text of a tree with a line break after each block element."""
    for el in tree.iter():
        if isinstance(el.tag, str) and el.tag in _BLOCKS:
            el.tail = "\n" + (el.tail or "")
    lines = (re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in tree.text_content().split("\n"))
    return "\n".join(line for line in lines if line)


def extract(markup: bytes | str, url: str | None = None, method: Extractor = "trafilatura") -> Extracted:
    """The title and main text of an HTML page, hidden elements dropped, by ``method``."""
    tree = parse_html(markup)
    if tree is None:
        return Extracted("", "", method)
    drop_hidden(tree)
    title = title_of(tree)
    if method == "readability":
        return Extracted(title, with_readability(tree), method)
    return Extracted(title, with_trafilatura(tree, url), method)
