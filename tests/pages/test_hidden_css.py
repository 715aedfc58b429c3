"""Page text hidden by a stylesheet never reaches the model (issue 25): ``display:none`` in a ``<style>``
rule, text moved off screen (``left:-9999px``, ``text-indent:-9999px``), ``font-size:1px``, white on white,
the "visually hidden" clip; inline styles of the same kinds too. Visible text stays, white text on a dark
box included."""

from __future__ import annotations

import lxml.html
import pytest

from assistant.pages.extract import drop_hidden

STYLE = """
<style>
/* a comment { display: none } */
.gone { display: none }
div.away, #far { position: absolute; left: -9999px }
.tiny{font-size:1px}
p.ghost { color: #fff; background: white }
.pale { color: rgb(255, 255, 255) }
.indent { text-indent: -10000px; overflow: hidden }
.sr { clip: rect(0 0 0 0); position: absolute; width: 1px; height: 1px; overflow: hidden }
article > .child-gone { visibility: hidden }
.dark { background-color: #111 }
.dark .light { color: #ffffff }
.plain { color: #333; left: 10px; font-size: 14px }
@media print { .printonly { display: none } }
.x::after { content: "no" }
a:hover { display: none }
</style>
"""
BODY = """
<article>
<p>VISIBLE-1 the article.</p>
<p class="gone">HIDDEN-A</p>
<div class="away">HIDDEN-B</div>
<div id="far">HIDDEN-C</div>
<span class="tiny">HIDDEN-D</span>
<p class="ghost">HIDDEN-E</p>
<p class="pale">HIDDEN-F</p>
<p class="indent">HIDDEN-G</p>
<span class="sr">HIDDEN-H</span>
<div class="child-gone">HIDDEN-I</div>
<p style="position:absolute; left:-9999px">HIDDEN-J</p>
<p style="font-size: 1px">HIDDEN-K</p>
<p style="color:white;background-color:#FFF">HIDDEN-L</p>
<div class="dark"><p class="light">VISIBLE-2 white on dark.</p></div>
<p class="plain">VISIBLE-3 plain.</p>
<p class="printonly">VISIBLE-4 on screen.</p>
<p><a href="/x">VISIBLE-5 a link</a></p>
</article>
"""


def _text(markup: str) -> str:
    tree = lxml.html.document_fromstring(markup)
    drop_hidden(tree)
    return tree.text_content()


def test_stylesheet_and_inline_hidden_text_is_dropped() -> None:
    text = _text(f"<html><head>{STYLE}</head><body>{BODY}</body></html>")
    for letter in "ABCDEFGHIJKL":
        assert f"HIDDEN-{letter}" not in text, letter
    for n in range(1, 6):
        assert f"VISIBLE-{n}" in text, n


@pytest.mark.parametrize("background", ["#fff", "white", "rgb(255,255,255)"])
def test_white_text_on_a_white_page_is_hidden_but_not_on_a_dark_one(background: str) -> None:
    light = f"<html><head><style>body{{background:{background}}} .w{{color:#fff}}</style></head>"
    assert "HIDDEN" not in _text(light + '<body><p class="w">HIDDEN</p><p>VISIBLE</p></body></html>')
    dark = "<html><head><style>body{background:#000} .w{color:#fff}</style></head>"
    assert "SEEN" in _text(dark + '<body><p class="w">SEEN</p></body></html>')


def test_odd_stylesheets_do_not_break_extraction() -> None:
    for css in ["}}}{", ".a{", "@import url(x.css);", "{display:none}", ".a{display:none", "*{display:none}"]:
        text = _text(f"<html><head><style>{css}</style></head><body><p class='b'>T</p></body></html>")
        assert isinstance(text, str)
