"""The daemon over HTTP with memory on and a scripted model, for the tests of what recall brings back
(test_recall_loop, test_personal): the hashing embedder, so the dense floor is 0.5 (see test_recall_loop)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from assistant.app import create_app
from assistant.config import load_settings
from assistant.llm.types import ChatMessage
from assistant.services import Services, build_services
from tests.fakes import FakeLLM, FixedClock
from tests.memory_fakes import HashingEmbedder


@contextmanager
def memory_chat(
    tmp_path: Path, clock: FixedClock, reply: Callable[[list[ChatMessage]], str]
) -> Iterator[tuple[TestClient, Services]]:
    settings = load_settings(None, data_dir=tmp_path / "data", scheduler={"enabled": False},
                             memory={"enabled": True, "recall_min_similarity": 0.5})  # fmt: skip
    services = build_services(settings, clock=clock, llm=FakeLLM(reply), embedder=HashingEmbedder())
    with TestClient(create_app(services)) as c:
        yield c, services


def ask(c: TestClient, text: str) -> dict[str, Any]:
    """One turn of a new conversation, remembered as the daemon's own clients ask."""
    r = c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": text}], "memory": True})
    assert r.status_code == 200, r.text
    return dict(r.json())
