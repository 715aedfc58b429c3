"""The benchmark's streaming client: each text chunk gets the time of the socket read that completed it."""

from __future__ import annotations

from benchmarks.bench_chat import _stamps_of

EVENTS = [
    b'data: {"choices":[{"delta":{"role":"assistant"}}]}',
    b'data: {"choices":[{"delta":{"content":"Hi"}}]}',
    b'data: {"choices":[{"delta":{"content":" there"}}]}',
    b'data: {"choices":[],"usage":{"completion_tokens":3}}',
    b"data: [DONE]",
]


def test_each_text_chunk_is_stamped_by_the_read_that_completed_it() -> None:
    raw = b"".join(e + b"\r\n\r\n" for e in EVENTS)
    ends = [raw.index(e) + len(e) + 4 for e in EVENTS]
    reads = [(1.0, ends[1] - 3), (2.0, ends[1]), (3.0, ends[2] - 1), (4.0, len(raw))]
    assert _stamps_of(raw, reads) == ([2.0, 4.0], 3)


def test_lf_line_ends_and_tokens_from_usage_not_chunks() -> None:
    raw = b"".join(e + b"\n\n" for e in EVENTS)
    assert _stamps_of(raw, [(5.0, len(raw))]) == ([5.0, 5.0], 3)


def test_no_usage_chunk_counts_no_tokens() -> None:
    raw = b"".join(e + b"\n\n" for e in EVENTS[:3])
    assert _stamps_of(raw, [(1.0, len(raw))])[1] == 0
