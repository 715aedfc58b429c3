"""Access to the Services object from a route."""

from __future__ import annotations

from fastapi import Request

from assistant.services import Services


def get_services(request: Request) -> Services:
    return request.app.state.services
