"""Which elements of a page a stylesheet hides from its reader (its ``<style>`` rules and inline styles).

A page can hide text from the person reading it and still hand it to a summarizer: planted instructions
live there. The page's own ``<style>`` elements are read (nothing is fetched: external stylesheets are
not), comments dropped, ``@media`` blocks for print or speech skipped. A rule hides what its selectors
match when its declarations (``hides``) say:

- ``display:none``, ``visibility:hidden|collapse``, ``opacity:0``, ``transform:scale(0)``;
- ``font-size`` of 1px/1pt or less (0.1em, 10% or less);
- moved off screen: ``left``, ``top``, ``right``, ``text-indent``, ``margin-left``/``-top`` of -999px or
  further;
- clipped away: ``clip: rect(0 0 0 0)`` and the like, ``clip-path: inset(50%)``, or a box of 1px or less
  with ``overflow:hidden`` (the "visually hidden" pattern);
- text the colour of its background: ``color`` equal to the rule's own background, or else to the nearest
  ancestor's background set by a rule or inline style, or else the page's (``body``/``html``, white when
  none is set). White text in a dark box stays.

Selectors are those simple enough to be sure of: type, ``.class``, ``#id``, ``*``, compounds of them,
descendant and child combinators, lists. Anything else (pseudo-classes such as ``:hover``, attributes,
siblings, ``::before``) is skipped: a rule not understood hides nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import lxml.html

MAX_CSS = 200_000  # characters of stylesheet read
MAX_SELECTORS = 500  # selectors evaluated per page
_COMMENT = re.compile(r"/\*.*?(?:\*/|$)", re.DOTALL)
_COMPOUND = re.compile(r"(?P<tag>[a-zA-Z][\w-]*|\*)?(?P<rest>(?:[.#][\w-]+)*)")
_NUMBER = re.compile(r"^(-?\d*\.?\d+)\s*([a-z%]*)$")
_NAMED = {"white": "#ffffff", "black": "#000000", "transparent": "transparent"}
_OFFSCREEN = ("left", "top", "right", "text-indent", "margin-left", "margin-top")


def declarations(style: str) -> dict[str, str]:
    """``"color: red; left:-9px !important"`` -> ``{"color": "red", "left": "-9px"}`` (last one wins)."""
    out: dict[str, str] = {}
    for part in style.split(";"):
        name, sep, value = part.partition(":")
        if sep:
            value = value.replace("!important", "").strip().lower()
            out[name.strip().lower()] = value
    return out


def _length(value: str) -> tuple[float, str] | None:
    m = _NUMBER.match(value.split()[0]) if value.split() else None
    return (float(m.group(1)), m.group(2)) if m else None


def _tiny_font(value: str) -> bool:
    size = _length(value)
    if size is None:
        return False
    n, unit = size
    limit = {"px": 1.0, "pt": 1.0, "": 0.0, "em": 0.1, "rem": 0.1, "%": 10.0, "vw": 0.1, "vh": 0.1}.get(unit)
    return limit is not None and n <= limit


def color(value: str) -> str | None:
    """A colour as ``#rrggbb`` (or ``transparent``), or None when it is not one this knows."""
    v = value.replace(" ", "").lower()
    if v in _NAMED:
        return _NAMED[v]
    if re.fullmatch(r"#[0-9a-f]{3}", v):
        return "#" + "".join(c * 2 for c in v[1:])
    if re.fullmatch(r"#[0-9a-f]{6}", v):
        return v
    m = re.fullmatch(r"rgba?\((\d+),(\d+),(\d+)(?:,([\d.]+))?\)", v)
    if m:
        if m.group(4) is not None and float(m.group(4)) == 0:
            return "transparent"
        return "#" + "".join(f"{min(255, int(x)):02x}" for x in m.group(1, 2, 3))
    return None


def background(decls: dict[str, str]) -> str | None:
    """The background colour a declaration block sets, if any."""
    for name in ("background-color", "background"):
        for token in decls.get(name, "").replace(",", " , ").split():
            found = color(token)
            if found is not None and found != "transparent":
                return found
    return None


def hides(decls: dict[str, str]) -> bool:
    """Whether these declarations alone hide an element's text (the module docstring's list, colours
    compared within the block only)."""
    if decls.get("display") == "none" or decls.get("visibility") in ("hidden", "collapse"):
        return True
    if decls.get("opacity", "").strip() in ("0", "0.0", "0%", ".0"):
        return True
    if re.search(r"scale[xy]?\(\s*0(?:\.0*)?\s*[,)]", decls.get("transform", "")):
        return True
    if "font-size" in decls and _tiny_font(decls["font-size"]):
        return True
    for name in _OFFSCREEN:
        size = _length(decls.get(name, ""))
        if size is not None and size[0] <= -999 and size[1] in ("px", "pt", ""):
            return True
    clip = decls.get("clip", "").replace(",", " ")
    if re.fullmatch(r"rect\(\s*(?:[01](?:px)?\s+){3}[01](?:px)?\s*\)", clip):
        return True
    if re.match(r"inset\(\s*50%", decls.get("clip-path", "")) or decls.get("clip-path", "").startswith(
        "circle(0"
    ):
        return True
    if decls.get("overflow") == "hidden":
        sizes = [_length(decls.get(k, "")) for k in ("width", "height")]
        if any(s is not None and s[0] <= 1 and s[1] in ("px", "") for s in sizes):
            return True
    text = color(decls.get("color", ""))
    return text is not None and (text == "transparent" or text == background(decls))


def selector_xpath(selector: str) -> str | None:
    """An XPath for a simple CSS selector, or None when it is not simple (see the module docstring)."""
    parts = re.sub(r"\s*>\s*", " > ", selector.strip()).split()
    if not parts or parts[0] == ">" or parts[-1] == ">":
        return None
    xpath, axis = "", "//"
    for part in parts:
        if part == ">":
            if axis == "/":
                return None
            axis = "/"
            continue
        m = _COMPOUND.fullmatch(part)
        if m is None or not part:
            return None
        step = m.group("tag") or "*"
        for kind, name in re.findall(r"([.#])([\w-]+)", m.group("rest")):
            if kind == ".":
                step += f"[contains(concat(' ', normalize-space(@class), ' '), ' {name} ')]"
            else:
                step += f"[@id='{name}']"
        xpath += axis + step
        axis = "//"
    return xpath


def _rules(css: str) -> Iterator[tuple[str, str]]:
    """``(selectors, declarations)`` of each rule, ``@media`` (screen) and ``@supports`` blocks opened."""
    i, n = 0, len(css)
    while i < n:
        brace, semi = css.find("{", i), css.find(";", i)
        if brace == -1:
            return
        prelude = css[i:brace].strip()
        if prelude.startswith("@") and semi != -1 and semi < brace:  # @import ...; @charset ...;
            i = semi + 1
            continue
        depth, j = 1, brace + 1
        while j < n and depth:
            depth += {"{": 1, "}": -1}.get(css[j], 0)
            j += 1
        body = css[brace + 1 : j - 1 if depth == 0 else j]
        if prelude.startswith("@"):
            media = prelude.lower()
            opened = media.startswith("@supports") or (
                media.startswith("@media")
                and not re.search(r"\b(print|speech)\b", media)
                or "screen" in media
            )
            if opened:
                yield from _rules(body)
        elif prelude:
            yield prelude, body
        i = j


def _matches(
    tree: lxml.html.HtmlElement, selectors: str, budget: list[int]
) -> Iterator[lxml.html.HtmlElement]:
    for selector in selectors.split(","):
        xpath = selector_xpath(selector)
        if xpath is None or budget[0] <= 0:
            continue
        budget[0] -= 1
        try:
            found = tree.xpath(xpath)
        except Exception:  # noqa: BLE001 - an XPath lxml rejects: the rule hides nothing
            continue
        yield from (el for el in found if isinstance(el, lxml.html.HtmlElement))


def hidden_elements(tree: lxml.html.HtmlElement) -> list[lxml.html.HtmlElement]:
    """The elements the page's stylesheets and inline styles hide (module docstring), in document order."""
    css = _COMMENT.sub(" ", "\n".join(s.text or "" for s in tree.iter("style"))[:MAX_CSS])
    budget = [MAX_SELECTORS]
    hidden: set[lxml.html.HtmlElement] = set()
    colors: dict[lxml.html.HtmlElement, str] = {}
    backgrounds: dict[lxml.html.HtmlElement, str] = {}
    page = "#ffffff"
    for selectors, body in _rules(css):
        decls = declarations(body)
        if hides(decls):
            hidden.update(_matches(tree, selectors, budget))
            continue
        text, back = color(decls.get("color", "")), background(decls)
        if back is not None and any(s.strip().lower() in ("body", "html") for s in selectors.split(",")):
            page = back
        if text is None and back is None:
            continue
        for el in _matches(tree, selectors, budget):
            if text is not None:
                colors[el] = text
            if back is not None:
                backgrounds[el] = back
    for el in tree.xpath("//*[@style]"):
        decls = declarations(el.get("style", ""))
        if hides(decls):
            hidden.add(el)
        if (text := color(decls.get("color", ""))) is not None:
            colors[el] = text
        if (back := background(decls)) is not None:
            backgrounds[el] = back
    for el, text in colors.items():
        if el in hidden or el.tag in ("body", "html"):
            continue
        behind, node = page, el
        while node is not None and node.tag not in ("body", "html"):
            if node in backgrounds:
                behind = backgrounds[node]
                break
            node = node.getparent()
        if text == behind:
            hidden.add(el)
    order = {el: i for i, el in enumerate(tree.iter())}
    return sorted(hidden, key=lambda el: order.get(el, 0))
