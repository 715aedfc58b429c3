"""What memory adds to a prompt. Shared by the orchestrator (which asks) and memory (which answers),
so neither imports the other."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Recall:
    """What memory adds to a prompt: a context block and the items it came from (shown to clients)."""

    block: str | None = None
    items: list[dict[str, Any]] = field(default_factory=list)
