"""Settings changed by copy: a test that needs other settings builds its daemon with a changed copy instead of
assigning to the settings (or the services) it was given."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from assistant.config import Settings


def changed(settings: Settings, **fields: Any) -> Settings:
    """A copy of ``settings`` with fields changed: a section's as a dict of its fields
    (``pages={"enabled": False}``), a plain field as its value (``timezone="Europe/Berlin"``)."""
    update: dict[str, Any] = {}
    for name, value in fields.items():
        current = getattr(settings, name)
        if isinstance(current, BaseModel) and isinstance(value, dict):
            update[name] = current.model_copy(update=value)
        else:
            update[name] = value
    return settings.model_copy(update=update)
