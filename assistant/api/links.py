"""OpenAPI links: how an id in one response feeds the next request (``POST /api/feeds`` -> the new feed's
routes). Clients can follow them, and schemathesis's stateful phase chains requests through them
(tests/api/test_fuzz.py)."""

from __future__ import annotations

from typing import Any


def link_to(path: str, method: str, **parameters: str) -> dict[str, Any]:
    """A link to ``method path`` filling its parameters from runtime expressions ("$response.body#/id")."""
    pointer = path.replace("~", "~0").replace("/", "~1")
    return {"operationRef": f"#/paths/{pointer}/{method.lower()}", "parameters": parameters}


def with_links(status: int, description: str, **links: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route whose ``status`` answer links to other operations."""
    return {status: {"description": description, "links": links}}


def links_to_each(paths: list[tuple[str, str]], parameter: str, expression: str) -> dict[str, dict[str, Any]]:
    """One link per (method, path), all filling ``parameter`` from ``expression``; named after them."""
    named = {}
    for method, path in paths:
        name = method.capitalize() + "".join(
            part.capitalize() for part in path.replace("{", "").replace("}", "").replace("_", "/").split("/")
        )
        named[name] = link_to(path, method, **{parameter: expression})
    return named
