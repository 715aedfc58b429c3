"""The web chat page: ``/`` (index.html) and ``/static/<file>`` from the package's ``assistant/web`` folder.

The page itself needs no token (it holds no data); every API call it makes does. Responses carry a strict
Content-Security-Policy: only this origin, no inline script or style, no plugins, no framing.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from assistant.core.errors import NotFound

router = APIRouter(include_in_schema=False)

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Revalidate on every load (ETag / Last-Modified make that cheap), so an upgrade is seen at once.
    "Cache-Control": "no-cache",
}
# A static file name: one path segment, no leading dot (so no "..", no hidden files).
_STATIC_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}$")


def web_dir() -> Path:
    """The folder that holds index.html, app.js and style.css (inside the installed package)."""
    return Path(str(resources.files("assistant") / "web"))


async def _serve(name: str, request: Request) -> Response:
    """The file via Starlette's StaticFiles (ETag, Last-Modified, 304, HEAD) plus the security headers."""
    if not _STATIC_NAME.match(name):
        raise NotFound(f"no such file: {name}")
    static = StaticFiles(directory=web_dir(), follow_symlink=False)
    response = await static.get_response(name, request.scope)
    response.headers.update(SECURITY_HEADERS)
    return response


@router.get("/")
async def index(request: Request) -> Response:
    return await _serve("index.html", request)


@router.get("/static/{name}")
async def static_file(name: str, request: Request) -> Response:
    return await _serve(name, request)
