"""Feed text is untrusted: turn it into short plain text (no markup, no control characters) before storing."""

from __future__ import annotations

import html
import re
import unicodedata
from html.parser import HTMLParser

TITLE_MAX = 300
SUMMARY_MAX = 1000
LINK_MAX = 2048
FEED_TITLE_MAX = 200
MARKUP_MAX = 100_000  # markup looked at for one field

_SKIP_CONTENT = {"script", "style", "head", "template", "noscript", "iframe", "object", "svg", "math"}
_BLOCK = {
    "p", "div", "br", "li", "ul", "ol", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6",
    "blockquote", "pre", "section", "article", "header", "footer", "table", "hr", "dd", "dt", "figure",
}
# Bidi embeddings/overrides/isolates can make displayed text differ from what is stored.
_BIDI = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f"))
_SPACE_RE = re.compile(r"\s+")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_CONTENT:
            self._skip += 1
        elif tag in _BLOCK:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_CONTENT:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Visible text of an HTML fragment, entities decoded (script/style dropped)."""
    if "<" not in markup and "&" not in markup:
        return markup
    parser = _TextExtractor()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:  # noqa: BLE001 - html.parser is lenient; fall back to a crude strip on anything odd
        return html.unescape(re.sub(r"<[^>]*>", " ", markup))
    return "".join(parser.parts)


def clean_text(value: str, limit: int) -> str:
    """One line of printable text, at most ``limit`` characters (an ellipsis marks a cut)."""
    value = value[: limit * 4].translate(_BIDI)
    value = "".join(" " if unicodedata.category(ch) in ("Cc", "Cs") else ch for ch in value)
    value = _SPACE_RE.sub(" ", value).strip()
    if len(value) > limit:
        value = value[: limit - 1].rstrip() + "\u2026"
    return value


def plain(value: str | None, content_type: str | None, limit: int) -> str:
    """Feed text of a declared type ("text/html", "text/plain"...) as capped plain text."""
    if not value:
        return ""
    if content_type is None or "html" in content_type or "xml" in content_type:
        value = html_to_text(value[:MARKUP_MAX])
    return clean_text(value, limit)
