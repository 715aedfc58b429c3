"""Splitting a text or Markdown document into note-sized chunks for import.

Chunks follow the document's structure: a Markdown heading starts a new chunk and carries its heading
path ("Trip > Lisbon") into each chunk under it; paragraphs are packed up to ``max_chars``; an
over-long paragraph is cut at sentence ends, then at spaces.
"""

from __future__ import annotations

import re

_HEADING_RE = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+")


def _pieces(paragraph: str, limit: int) -> list[str]:
    if len(paragraph) <= limit:
        return [paragraph]
    out: list[str] = []
    current = ""
    for sentence in _SENTENCE_RE.split(paragraph):
        while len(sentence) > limit:  # a sentence longer than a chunk: cut at a space
            cut = sentence.rfind(" ", 0, limit)
            cut = cut if cut > limit // 2 else limit
            if current:
                out.append(current)
                current = ""
            out.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if current and len(current) + 1 + len(sentence) > limit:
            out.append(current)
            current = ""
        current = f"{current} {sentence}".strip()
    if current:
        out.append(current)
    return [p for p in out if p]


def chunk_document(text: str, max_chars: int = 1500) -> list[str]:
    text = text.replace("\r\n", "\n").replace("\x00", "")
    sections: list[tuple[str, list[str]]] = []
    headings: list[str] = []
    paragraph: list[str] = []
    paragraphs: list[str] = []

    def end_paragraph() -> None:
        if paragraph:
            paragraphs.append(" ".join(s.strip() for s in paragraph).strip())
            paragraph.clear()

    def end_section() -> None:
        end_paragraph()
        if paragraphs:
            sections.append((" > ".join(headings), list(paragraphs)))
            paragraphs.clear()

    for line in text.split("\n"):
        m = _HEADING_RE.match(line)
        if m:
            end_section()
            level = len(m.group(1))
            headings[:] = headings[: level - 1] + [m.group(2)]
            continue
        if not line.strip():
            end_paragraph()
        else:
            paragraph.append(line)
    end_section()

    chunks: list[str] = []
    for heading, paras in sections:
        prefix = f"{heading}\n" if heading else ""
        limit = max(200, max_chars - len(prefix))
        current = ""
        for para in paras:
            for piece in _pieces(para, limit):
                if current and len(current) + 2 + len(piece) > limit:
                    chunks.append(prefix + current)
                    current = ""
                current = f"{current}\n\n{piece}" if current else piece
        if current:
            chunks.append(prefix + current)
    return [c for c in chunks if c.strip()]
