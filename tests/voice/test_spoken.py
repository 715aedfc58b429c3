"""Text made for the ear (assistant/voice/spoken.py): table-driven, one row per choice."""

from __future__ import annotations

import pytest

from assistant.voice.spoken import CODE_SKIPPED, for_the_ear, number_words, time_words

CASES = [
    # links and URLs: never spelled out
    ("See [the docs](https://example.com/a/b?c=1) now.", "See the docs now."),
    ("Read https://www.example.com/path/to/page.html today", "Read a link to example.com today."),
    ("Source: <https://news.example.org/x>", "Source: a link to news.example.org."),
    ("![a red car](https://x.example/car.png)", "a red car."),
    # Markdown marks never spoken
    ("**Bold** and _italic_ and `ls -la`", "Bold and italic and ls -la."),
    ("snake_case_name stays", "snake case name stays."),
    ("at 7:30 a.m. Then at 9 p.m. sharp", "at seven thirty am. Then at nine pm sharp."),
    ("## Car\nThe car is due for service.\n\n---\n", "Car. The car is due for service."),
    ("> quoted wisdom", "quoted wisdom."),
    # lists read as sentences
    ("Buy:\n- milk\n- eggs\n- bread", "Buy: milk. eggs. bread."),
    ("1. Open the hood\n2. Check the oil", "Open the hood. Check the oil."),
    # tables: rows as sentences, the rule dropped
    ("| item | price |\n|---|---|\n| tea | $3 |", "item, price. tea, three dollars."),
    # code blocks skipped with a word
    ("Run this:\n```python\nprint('hi')\n```\nDone.", f"Run this: {CODE_SKIPPED} Done."),
    # times on the 12-hour clock
    ("The train leaves at 18:42.", "The train leaves at six forty-two pm."),
    ("Wake at 07:05", "Wake at seven oh five am."),
    ("Lunch at 12:00, bed at 00:00", "Lunch at noon, bed at midnight."),
    ("Call at 7:30 am", "Call at seven thirty am."),
    ("at 9:00 PM", "at nine pm."),
    # numbers
    ("It costs $1,234.50", "It costs one thousand two hundred thirty-four dollars and fifty cents."),
    ("40 % of 3.5 km", "forty percent of three point five km."),
    ("It is 21°C", "It is twenty-one degrees Celsius."),
    ("on 2026-12-07", "on December seventh, twenty twenty-six."),
    ("the 3rd time in 2-3 days", "the third time in two to three days."),
    ("order 1234567890123", "order one two three four five six seven eight nine zero one two three."),
    # plain text is left alone, and it is idempotent on speech
    ("Hello there.", "Hello there."),
    ("", ""),
]


@pytest.mark.parametrize(("text", "spoken"), CASES)
def test_for_the_ear(text: str, spoken: str) -> None:
    assert for_the_ear(text) == spoken


@pytest.mark.parametrize(("text", "_"), CASES)
def test_for_the_ear_is_idempotent(text: str, _: str) -> None:
    once = for_the_ear(text)
    assert for_the_ear(once) == once


@pytest.mark.parametrize(
    ("n", "words"),
    [(0, "zero"), (13, "thirteen"), (40, "forty"), (99, "ninety-nine"), (100, "one hundred"),
     (1001, "one thousand one"), (2_000_000, "two million")],
)  # fmt: skip
def test_number_words(n: int, words: str) -> None:
    assert number_words(n) == words


def test_time_words() -> None:
    assert time_words(18, 42) == "six forty-two pm"
    assert time_words(0, 15) == "twelve fifteen am"
    assert time_words(12, 30) == "twelve thirty pm"


def test_no_url_or_markdown_survives() -> None:
    hostile = "# T\n* [x](javascript:alert(1)) **y** http://evil.example/a/b/c `z` | a | b |"
    out = for_the_ear(hostile)
    for mark in ("http", "://", "*", "#", "`", "|", "[", "("):
        assert mark not in out, out
