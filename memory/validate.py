"""Checks on what may become a memory: clear errors for empty, huge or binary text and bad fields."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from assistant.core.errors import BadRequest, PayloadTooLarge

_SOURCE_RE = re.compile(r"^(user|assistant|note|skill:[A-Za-z0-9_.-]{1,64}|feed:\S{1,2000})$")
_KEY_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_METADATA_KEYS = 32


def check_text(text: Any, max_chars: int) -> str:
    if not isinstance(text, str):
        raise BadRequest("memory text must be a string", code="memory_text")
    if not text.strip():
        raise BadRequest("memory text is empty", code="memory_empty")
    if len(text) > max_chars:
        raise PayloadTooLarge(
            f"memory text is {len(text)} characters; the limit is {max_chars} (memory.max_chars). "
            "Split it, or use `assistant memory import` which chunks files",
            code="memory_too_large",
        )
    if looks_binary(text):
        raise BadRequest("memory text looks like binary data (control characters), not text",
                         code="memory_binary")
    return text.strip()


def looks_binary(text: str) -> bool:
    if "\x00" in text:
        return True
    sample = text[:4096]
    bad = sum(
        1
        for ch in sample
        if (unicodedata.category(ch) == "Cc" and ch not in "\t\n\r\f") or ch == "\ufffd"
    )
    return bad > max(2, len(sample) // 100)


def check_source(source: Any) -> str:
    if not isinstance(source, str) or not _SOURCE_RE.match(source):
        raise BadRequest(
            "source must be one of user, assistant, note, skill:<name>, feed:<url>", code="memory_source"
        )
    return source


def check_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise BadRequest("metadata must be an object", code="memory_metadata")
    if len(metadata) > MAX_METADATA_KEYS:
        raise BadRequest(f"metadata may hold at most {MAX_METADATA_KEYS} keys", code="memory_metadata")
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not _KEY_RE.match(key):
            raise BadRequest(
                f"metadata key {key!r} must be 1-64 letters, digits, '_', '.', '-'", code="memory_metadata"
            )
        if value is not None and not isinstance(value, str | int | float | bool):
            raise BadRequest(f"metadata {key!r} must be a string, number or boolean", code="memory_metadata")
        if isinstance(value, str) and len(value) > 2000:
            raise BadRequest(f"metadata {key!r} is longer than 2000 characters", code="memory_metadata")
        if value is not None:
            out[key] = value
    return out
