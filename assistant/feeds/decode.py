"""Decoding a fetched body in bounded pieces: a compression bomb never costs more memory than the limit.

httpx decodes each read whole, and a stacked ``Content-Encoding: gzip, gzip`` in one call, so a 662-byte
response could decode to hundreds of MB before any size check saw it. Here the raw bytes are read in
pieces and inflated with a cap on each call's output: the decoded size is counted as it comes, the body
stops at ``max_bytes``, one encoding layer at most is accepted (gzip, deflate or identity; anything stacked
or unknown is refused by name), and a body whose decoded size grows past ``MAX_RATIO`` times what came over
the wire (beyond the first ``RATIO_FREE_BYTES``) is refused as a bomb.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass

ACCEPT_ENCODING = "gzip, deflate"  # what the fetcher asks for: the encodings decoded here
MAX_RATIO = 100  # real feeds and pages compress 3-20x; a bomb is 1000x and more
RATIO_FREE_BYTES = 1 << 20  # small bodies may compress as well as they like
_PIECE = 1 << 16  # decoded bytes produced per inflate call at most


class BodyRefused(Exception):
    """The body cannot be read safely: a stacked or unknown encoding, or a decompression bomb."""


@dataclass
class Decoded:
    body: bytes
    raw_bytes: int  # as it came over the wire
    truncated: bool  # stopped at max_bytes
    corrupt: str | None = None  # the compressed data broke off here (what was decoded before it is kept)


def encodings(header: str | None) -> list[str]:
    """The Content-Encoding layers in the order they were applied, identity left out."""
    if not header:
        return []
    return [e.strip().lower() for e in header.split(",") if e.strip() and e.strip().lower() != "identity"]


def _inflater(encoding: str) -> zlib._Decompress:
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj(zlib.MAX_WBITS)  # zlib-wrapped; raw deflate is tried on the first error
    raise BodyRefused(f"content encoding {encoding!r} is not supported (the fetcher asks for {ACCEPT_ENCODING})")


def decode_body(raw: Iterator[bytes], content_encoding: str | None, max_bytes: int) -> Decoded:
    """Read ``raw`` (the undecoded pieces) into at most ``max_bytes`` decoded bytes.

    BodyRefused for a stacked or unknown encoding or a bomb. Corrupt compressed data ends the body where
    it broke (``corrupt`` says why)."""
    layers = encodings(content_encoding)
    if len(layers) > 1:
        raise BodyRefused(f"stacked content encodings ({', '.join(layers)}) are refused: one layer at most")
    inflate = _inflater(layers[0]) if layers else None
    out = bytearray()
    raw_bytes = 0
    first = True
    for piece in raw:
        raw_bytes += len(piece)
        if inflate is None:
            out += piece[: max_bytes + 1 - len(out)]
        else:
            data = piece
            while data:
                room = max_bytes + 1 - len(out)
                try:
                    chunk = inflate.decompress(data, min(_PIECE, room))
                except zlib.error as exc:
                    if not (first and layers[0] == "deflate"):
                        return Decoded(bytes(out), raw_bytes, False, f"corrupt {layers[0]} data ({exc})")
                    inflate = zlib.decompressobj(-zlib.MAX_WBITS)  # a raw deflate stream, as some servers send
                    first = False
                    continue
                first = False
                out += chunk
                if len(out) > max_bytes:
                    break
                _check_ratio(len(out), raw_bytes)
                data = inflate.unconsumed_tail
                if not chunk and data:  # no progress: the stream ended with bytes left over
                    break
        if len(out) > max_bytes:
            return Decoded(bytes(out[:max_bytes]), raw_bytes, True)
    if inflate is not None and not inflate.eof:
        return Decoded(bytes(out), raw_bytes, False, f"the {layers[0]} data ended before its end")
    return Decoded(bytes(out), raw_bytes, False)


def _check_ratio(decoded: int, raw: int) -> None:
    if decoded > RATIO_FREE_BYTES and decoded > MAX_RATIO * max(raw, 1):
        raise BodyRefused(
            f"the body decodes to more than {MAX_RATIO} times its {raw} bytes on the wire: refused as a "
            "decompression bomb"
        )
