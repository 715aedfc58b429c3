"""Bearer-token check for every endpoint but /healthz (constant-time comparison)."""

from __future__ import annotations

import hmac

from fastapi import Request

from assistant.core.errors import Unauthorized


def token_matches(expected: str, header: str | None) -> bool:
    if not header:
        return False
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


async def require_token(request: Request) -> None:
    expected = request.app.state.services.settings.server.api_token
    if not expected:
        return
    header = request.headers.get("authorization")
    # EventSource (browsers) cannot set headers: a ?token= query parameter is accepted for GET streams.
    if header is None and request.method == "GET" and "token" in request.query_params:
        header = "Bearer " + request.query_params["token"]
    if not token_matches(expected, header):
        raise Unauthorized("missing or wrong API token: send 'Authorization: Bearer <token>'")
