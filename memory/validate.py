"""Checks on what may become a memory: clear errors for empty, huge or binary text and bad fields."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from assistant.core.errors import BadRequest, PayloadTooLarge
from assistant.core.recall import CONVERSATION, PROVENANCES, UNTRUSTED, USER, Provenance

_SOURCE_RE = re.compile(r"^(user|assistant|note|skill:[A-Za-z0-9_.-]{1,64}|feed:\S{1,2000})$")
_KEY_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_METADATA_KEYS = 32
PROVENANCE_KEY = "provenance"  # reserved metadata key: set by code from the source, never by a client


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
        if key == PROVENANCE_KEY:
            raise BadRequest(
                f"metadata key {PROVENANCE_KEY!r} is reserved: a memory's provenance is set from its source",
                code="memory_metadata",
            )
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


def source_provenance(source: str) -> Provenance:
    """The provenance a source implies (also for memories stored before provenance existed).

    ``user`` and ``note`` are the user's words; ``assistant`` is a conversation turn; ``feed:*`` is fetched
    text; ``skill:*`` is untrusted unless the code that stored it said otherwise (the scheduler knows
    whether a skill's output is derived from untrusted text; a client posting ``skill:x`` does not)."""
    if source in ("user", "note"):
        return USER
    if source == "assistant":
        return CONVERSATION
    return UNTRUSTED


def resolve_provenance(source: str, given: str | None) -> Provenance:
    """The provenance to store: ``given`` (from code that knows where the text came from) or the source's.

    Fetched text (``feed:*``) is untrusted whatever is given."""
    if given is None or source.startswith("feed:"):
        return source_provenance(source)
    for p in PROVENANCES:
        if given == p:
            return p
    raise ValueError(f"provenance must be one of {', '.join(PROVENANCES)}, got {given!r}")


def record_provenance(source: str, metadata: Mapping[str, Any]) -> Provenance:
    """The provenance of a stored memory: the stored one, else derived from its source (older stores)."""
    stored = metadata.get(PROVENANCE_KEY)
    if source.startswith("feed:") or not isinstance(stored, str) or stored not in PROVENANCES:
        return source_provenance(source)
    return resolve_provenance(source, stored)
