"""Text made for the ear: what a model writes for the eye (Markdown, URLs, digits, 24-hour times) turned into
what a voice should say. One pure function, :func:`for_the_ear`; the voice client passes every answer and
every notification through it before text-to-speech.

Choices (tests/voice/test_spoken.py is the table):
- a link reads as its text; a bare URL as "a link to example.com" (the host, never the path);
- a fenced code block becomes "(There is a code block here; I'll skip it.)"; inline code keeps its text;
- headings, list items and table rows become sentences (a table row's cells joined by commas);
- emphasis, quote marks and rules are dropped;
- times are said on the 12-hour clock: "18:42" is "six forty-two pm", "07:05" is "seven oh five am",
  "12:00" is "noon", "00:00" is "midnight". The default voice is en-us, whose listeners say the 12-hour
  clock; "eighteen forty-two" sounds like a timetable and "six forty-two" alone would be ambiguous.
- numbers become words ("1,234" is "one thousand two hundred thirty-four", "3.5" is "three point five",
  "40 %" is "forty percent", "$5" is "five dollars"), ISO dates "December seventh, twenty twenty-six":
  the same for every speech engine, whatever its own text normalisation does with digits.
"""

from __future__ import annotations

import re

ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen").split()  # fmt: skip
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
SCALES = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"))
ORDINAL_IRREGULAR = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                     "nine": "ninth", "twelve": "twelfth"}  # fmt: skip
MONTHS = ("January February March April May June July August September October November December").split()
CURRENCIES = {"$": ("dollar", "dollars"), "€": ("euro", "euros"), "£": ("pound", "pounds")}
CODE_SKIPPED = "(There is a code block here; I'll skip it.)"
MAX_WORDED = 10**12  # longer digit strings (ids, phone numbers) are read digit by digit


def number_words(n: int) -> str:
    """An integer in words, American style: 1234 -> "one thousand two hundred thirty-four"."""
    if n < 0:
        return "minus " + number_words(-n)
    if n < 20:
        return ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return TENS[tens] + (f"-{ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{ONES[hundreds]} hundred" + (f" {number_words(rest)}" if rest else "")
    for size, name in SCALES:
        if n >= size:
            head, rest = divmod(n, size)
            return f"{number_words(head)} {name}" + (f" {number_words(rest)}" if rest else "")
    raise AssertionError(n)  # pragma: no cover


def ordinal_words(n: int) -> str:
    words = number_words(n)
    head, _, last = words.rpartition("-" if "-" in words.split(" ")[-1] else " ")
    sep = "-" if "-" in words.split(" ")[-1] else " "
    if last in ORDINAL_IRREGULAR:
        last = ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return f"{head}{sep}{last}" if head else last


def year_words(y: int) -> str:
    """2026 -> "twenty twenty-six", 1999 -> "nineteen ninety-nine", 2005 -> "two thousand five"."""
    hi, lo = divmod(y, 100)
    if y < 1100 or (2000 <= y < 2010) or lo == 0:
        return number_words(y)
    return f"{number_words(hi)} {'oh ' + ONES[lo] if lo < 10 else number_words(lo)}"


def time_words(hour: int, minute: int, suffix: str | None = None) -> str:
    """24-hour (or 12-hour with ``suffix`` am/pm) clock time on the 12-hour clock, as said aloud."""
    if suffix is None:
        if (hour, minute) == (0, 0):
            return "midnight"
        if (hour, minute) == (12, 0):
            return "noon"
        suffix = "am" if hour < 12 else "pm"
    h12 = hour % 12 or 12
    if minute == 0:
        mins = ""
    elif minute < 10:
        mins = f" oh {ONES[minute]}"
    else:
        mins = " " + number_words(minute)
    return f"{number_words(h12)}{mins} {suffix}"


def _host(url: str) -> str:
    host = re.sub(r"^[a-z][a-z0-9+.-]*://", "", url, flags=re.I).split("/")[0].split("?")[0].split("#")[0]
    host = host.rsplit("@", 1)[-1].split(":")[0]
    return host.removeprefix("www.") or "a web page"


def _numbers(text: str) -> str:
    def iso_date(m: re.Match[str]) -> str:
        y, mo, d = int(m[1]), int(m[2]), int(m[3])
        if not (1 <= mo <= 12 and 1 <= d <= 31):
            return m[0]
        return f"{MONTHS[mo - 1]} {ordinal_words(d)}, {year_words(y)}"

    def clock(m: re.Match[str]) -> str:
        hour, minute = int(m[1]), int(m[2] or 0)
        suffix = m[3].lower() + "m" if m[3] else None
        if minute > 59 or hour > (12 if suffix else 23):
            return m[0]
        return time_words(hour, minute, suffix)

    def money(m: re.Match[str]) -> str:
        one, many = CURRENCIES[m[1]]
        whole, cents = m[2].replace(",", ""), m[3]
        n = int(whole)
        said = f"{number_words(n)} {one if n == 1 else many}"
        if cents and int(cents):
            said += f" and {number_words(int(cents))} cent{'' if int(cents) == 1 else 's'}"
        return said

    def decimal(m: re.Match[str]) -> str:
        whole = int(m[1].replace(",", ""))
        if whole >= MAX_WORDED:
            return m[0]
        return f"{number_words(whole)} point {' '.join(ONES[int(c)] for c in m[2])}"

    def integer(m: re.Match[str]) -> str:
        n = int(m[0].replace(",", ""))
        return number_words(n) if n < MAX_WORDED else " ".join(ONES[int(c)] for c in m[0] if c.isdigit())

    def ordinal(m: re.Match[str]) -> str:
        return ordinal_words(int(m[1]))

    text = re.sub(r"\b(\d{4})-(\d{2})-(\d{2})\b", iso_date, text)
    text = re.sub(
        r"\b(\d{1,2}):(\d{2})(?::\d{2})?(?:\s*([ap])\.?m\b(?:\.(?!\s*$|\s+(?-i:[A-Z])))?)?",
        clock,
        text,
        flags=re.I,
    )
    text = re.sub(
        r"\b(\d{1,2})()\s*([ap])\.?m\b(?:\.(?!\s*$|\s+(?-i:[A-Z])))?", clock, text, flags=re.I
    )  # "9 pm"
    text = re.sub(r"([$€£])\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{2}))?\b", money, text)
    text = re.sub(r"(\d)\s?%", r"\1 percent", text)
    text = re.sub(r"(\d)\s?°\s?C\b", r"\1 degrees Celsius", text)
    text = re.sub(r"(\d)\s?°\s?F\b", r"\1 degrees Fahrenheit", text)
    text = re.sub(r"(\d)\s?°", r"\1 degrees", text)
    text = re.sub(r"\b(\d+)\s?-\s?(\d+)\b(?=\s+[a-z])", r"\1 to \2", text)  # "3-5 days"
    text = re.sub(r"\b(\d+)(?:st|nd|rd|th)\b", ordinal, text)
    text = re.sub(r"(?<![\d.,])(\d{1,3}(?:,\d{3})+|\d+)\.(\d+)(?![\d.])", decimal, text)
    text = re.sub(r"(?<![\d.,])(?:\d{1,3}(?:,\d{3})+|\d+)(?![\d,]\d)", integer, text)
    return text


def _sentence(line: str) -> str:
    """A line as a sentence: ends with punctuation so that the voice pauses."""
    line = line.strip()
    if not line:
        return ""
    return line if line[-1] in ".!?:;)" else line + "."


def _inline(text: str) -> str:
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", lambda m: m[1] or "an image", text)  # images: their alt text
    text = re.sub(r"\[([^\]]+)\]\((?:[^()\s]|\([^()]*\))*\)", r"\1", text)  # [text](url): the text
    text = re.sub(r"<((?:https?|ftp)://[^>\s]+)>", lambda m: "a link to " + _host(m[1]), text)
    text = re.sub(r"\b(?:https?|ftp)://[^\s<>)\]]+", lambda m: "a link to " + _host(m[0]), text, flags=re.I)
    text = re.sub(r"\bwww\.[^\s<>)\]]+", lambda m: "a link to " + _host(m[0]), text)
    text = re.sub(r"<[^>\n]{1,80}>", " ", text)  # stray HTML tags
    text = re.sub(r"`([^`]*)`", r"\1", text)  # inline code: its text
    text = re.sub(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1", r"\2", text)  # bold
    text = re.sub(r"(?<![\w*])([*_])(?=\S)(.+?)(?<=\S)\1(?![\w*])", r"\2", text)  # italic
    text = re.sub(r"~~(.+?)~~", r"\1", text)
    text = re.sub(r"[*_#`~|\\<>{}\[\]]", " ", text)  # whatever marks are left
    return text


def for_the_ear(text: str) -> str:
    """``text`` (Markdown from the model, a notification) as it should be spoken: one line of plain
    sentences. Pure: no engine, no I/O."""
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", " ", text.replace("\r\n", "\n"))
    text = re.sub(
        r"(?ms)^[ \t]*(```|~~~)[^\n]*\n.*?(?:^[ \t]*\1[ \t]*$|\Z)", "\n" + CODE_SKIPPED + "\n", text
    )
    sentences: list[str] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            sentences.append(" ".join(paragraph))
            paragraph.clear()

    for raw in text.split("\n"):
        line = raw.strip()
        if not line or re.fullmatch(r"([-*_=])(\s*\1){2,}", line):  # blank, a rule or a setext underline
            flush()
            continue
        if re.fullmatch(r"\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?", line):  # a table's header rule
            continue
        line = re.sub(r"^(>\s*)+", "", line)
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*$", line)
        item = re.match(r"^(?:[-*+•]|\d{1,3}[.)])\s+(.*)$", line)
        if line.startswith("|") and line.count("|") >= 2:
            cells = [c.strip() for c in line.strip("|").split("|")]
            flush()
            sentences.append(_sentence(", ".join(_inline(c).strip() for c in cells if c.strip())))
        elif heading or item or line == CODE_SKIPPED:
            flush()
            body = heading[1] if heading else item[1] if item else line
            sentences.append(_sentence(_inline(body)))
        else:
            paragraph.append(_inline(line))
    flush()
    spoken = " ".join(_sentence(s) if not s.rstrip().endswith((".", "!", "?", ":", ";", ")")) else s
                      for s in sentences)  # fmt: skip
    spoken = _numbers(spoken)
    spoken = " ".join(spoken.split())
    spoken = re.sub(r"\s+([.,!?;:])", r"\1", spoken)
    spoken = re.sub(r"([.!?])\.+", r"\1", spoken)
    spoken = re.sub(r"(^|[.!?]\s)[.,;:]\s*", r"\1", spoken)
    return spoken.strip()
