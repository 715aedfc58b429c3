"""JSON output constrained by a llama.cpp grammar: any JSON object, or what a JSON schema allows.

``schema_grammar`` turns a JSON schema into GBNF with llama-cpp-python's converter
(``llama_cpp.llama_grammar.json_schema_to_gbnf``). The converter skips what it cannot express without a word
(``minimum``, ``multipleOf``, ``not``, most ``format``s...), and a grammar that skips a rule would let an answer
through that the schema refuses. So the schema is walked first and every keyword outside ``SUPPORTED`` (or a
combination the converter ignores part of) is an ``UnsupportedSchema`` naming the keyword and where it is:
the caller answers 400. Annotations (``title``, ``description``, ``examples``...) are read and ignored.

Two repairs to the converter's output keep every answer parseable by a strict JSON parser: string
characters exclude raw control characters (the converter allows a raw newline inside a string).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

# Keywords the converter turns into grammar rules.
SUPPORTED = frozenset(
    {
        "type", "properties", "required", "additionalProperties", "items", "prefixItems", "minItems",
        "maxItems", "enum", "const", "anyOf", "$ref", "$defs", "definitions", "minLength", "maxLength",
        "format",
    }
)  # fmt: skip
# Keywords that say nothing about which values are valid.
ANNOTATIONS = frozenset(
    {
        "title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated", "readOnly",
        "writeOnly", "$anchor",
    }
)  # fmt: skip
FORMATS = frozenset({"date", "time", "date-time", "uuid", "uuid1", "uuid2", "uuid3", "uuid4", "uuid5"})
TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
MAX_NODES = 2_000  # sub-schemas in one schema: the grammar grows with them

# The converter's string character allows raw control characters, which JSON forbids inside a string.
_LOOSE_CHAR = 'char ::= [^"\\\\] |'
_STRICT_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'

# Any JSON object, whitespace bounded (a small model otherwise pads with newlines until max_tokens).
JSON_OBJECT_SCHEMA: dict[str, Any] = {"type": "object"}


class UnsupportedSchema(ValueError):
    """A schema the grammar cannot enforce; the message names the keyword and its place."""


def _where(path: tuple[str, ...]) -> str:
    return "the schema's root" if not path else "/" + "/".join(path)


def _walk(node: Any, path: tuple[str, ...]) -> Iterator[tuple[dict[str, Any], tuple[str, ...]]]:
    """Every sub-schema with its JSON-pointer path."""
    if not isinstance(node, dict):
        raise UnsupportedSchema(
            f"{_where(path)}: a schema must be a JSON object (true/false schemas cannot be enforced)"
        )
    yield node, path
    for key in ("properties", "$defs", "definitions"):
        children = node.get(key)
        if children is None:
            continue
        if not isinstance(children, dict):
            raise UnsupportedSchema(f"{_where((*path, key))}: must be an object of schemas")
        for name, child in children.items():
            yield from _walk(child, (*path, key, str(name)))
    for key in ("anyOf", "prefixItems"):
        children = node.get(key)
        if children is None:
            continue
        if not isinstance(children, list) or not children:
            raise UnsupportedSchema(f"{_where((*path, key))}: must be a non-empty list of schemas")
        for i, child in enumerate(children):
            yield from _walk(child, (*path, key, str(i)))
    items = node.get("items")
    if isinstance(items, list):
        for i, child in enumerate(items):
            yield from _walk(child, (*path, "items", str(i)))
    elif items is not None:
        yield from _walk(items, (*path, "items"))
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        yield from _walk(extra, (*path, "additionalProperties"))


def _check_node(node: dict[str, Any], path: tuple[str, ...]) -> None:
    where = _where(path)
    for key in node:
        if key not in SUPPORTED and key not in ANNOTATIONS:
            hint = " (use anyOf)" if key == "oneOf" else ""
            raise UnsupportedSchema(
                f"{where}: the keyword {key!r} cannot be enforced by the grammar{hint}; leave it out"
            )
    constraints = {k for k in node if k not in ANNOTATIONS and k not in ("$defs", "definitions")}
    types = node.get("type")
    if types is not None:
        listed = types if isinstance(types, list) else [types]
        bad = [t for t in listed if not isinstance(t, str) or t not in TYPES]
        if bad or not listed:
            raise UnsupportedSchema(f"{where}: type {bad[0] if bad else types!r} is not a JSON schema type")
    ref = node.get("$ref")
    if ref is not None:
        if not isinstance(ref, str) or not ref.startswith("#/"):
            raise UnsupportedSchema(
                f"{where}: $ref {ref!r}: only references inside the schema (#/...) are followed"
            )
        if constraints - {"$ref"}:
            raise UnsupportedSchema(
                f"{where}: keywords beside $ref ({', '.join(sorted(constraints - {'$ref'}))}) would be ignored"
            )
    if "anyOf" in node and constraints - {"anyOf"}:
        raise UnsupportedSchema(f"{where}: keywords beside anyOf ({', '.join(sorted(constraints - {'anyOf'}))}) would be ignored; move them into each alternative")  # fmt: skip
    fmt = node.get("format")
    if fmt is not None:
        if not isinstance(fmt, str) or fmt not in FORMATS:
            raise UnsupportedSchema(
                f"{where}: format {fmt!r} cannot be enforced (supported: {', '.join(sorted(FORMATS))})"
            )
        if {"minLength", "maxLength"} & constraints:
            raise UnsupportedSchema(f"{where}: minLength/maxLength beside format would be ignored")
    if ({"minLength", "maxLength"} & constraints) and types != "string":
        raise UnsupportedSchema(f'{where}: minLength/maxLength are enforced only with "type": "string"')
    if "prefixItems" in node and ({"items", "minItems", "maxItems"} & constraints):
        raise UnsupportedSchema(f"{where}: items/minItems/maxItems beside prefixItems would be ignored")
    if ("enum" in node or "const" in node) and constraints - {"enum", "const", "type"}:
        raise UnsupportedSchema(f"{where}: keywords beside enum/const would be ignored")
    if "enum" in node and (not isinstance(node["enum"], list) or not node["enum"]):
        raise UnsupportedSchema(f"{where}: enum must be a non-empty list")
    required = node.get("required")
    if required is not None and not (
        isinstance(required, list) and all(isinstance(r, str) for r in required)
    ):
        raise UnsupportedSchema(f"{where}: required must be a list of property names")
    for key in ("minItems", "maxItems", "minLength", "maxLength"):
        value = node.get(key)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 1000
        ):
            raise UnsupportedSchema(f"{where}: {key} must be an integer from 0 to 1000")
    props = node.get("properties")
    literals = [
        *(props if isinstance(props, dict) else ()),
        *(node["enum"] if isinstance(node.get("enum"), list) else []),
    ]
    if "const" in node:
        literals.append(node["const"])
    for value in literals:
        if "\\" in json.dumps(value, ensure_ascii=False):  # the converter's literals mangle escapes
            raise UnsupportedSchema(
                f"{where}: {json.dumps(value)[:60]} holds a quote, a backslash or a control character, which "
                "the grammar's literals cannot carry"
            )
    extra = node.get("additionalProperties")
    if extra is not None and not isinstance(extra, bool | dict):
        raise UnsupportedSchema(f"{where}: additionalProperties must be a boolean or a schema")


def check_schema(schema: Any) -> None:
    """UnsupportedSchema naming the first keyword (with its place) the grammar cannot enforce."""
    for n, (node, path) in enumerate(_walk(schema, ())):
        if n >= MAX_NODES:
            raise UnsupportedSchema(f"the schema has more than {MAX_NODES} sub-schemas")
        _check_node(node, path)


def schema_grammar(schema: Any) -> str:
    """A GBNF grammar (root rule ``root``) whose every sentence is JSON valid against ``schema``."""
    check_schema(schema)
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        grammar = json_schema_to_gbnf(json.dumps(schema))
    except (
        ValueError,
        AssertionError,
        KeyError,
        TypeError,
        IndexError,
        AttributeError,
        RecursionError,
    ) as exc:
        raise UnsupportedSchema(f"the schema cannot be turned into a grammar: {exc}") from None
    return grammar.replace(_LOOSE_CHAR, _STRICT_CHAR)


def json_object_grammar() -> str:
    """Any JSON object."""
    return schema_grammar(JSON_OBJECT_SCHEMA)
