"""Follow-up turns with memory on and off: time to first token and prompt tokens evaluated, per turn.

A 10-turn stored conversation on the bundled default model, driven through the daemon's HTTP API
(in-process, streamed, ``conversation_id`` given), once with memory off and once with memory on (the real
embedder, a few notes stored first so recall changes from turn to turn). Recalled memories go in front of
the newest user message, so with memory on a follow-up turn should evaluate about as many tokens as with
memory off (the new message plus the recalled block), not the whole conversation.

    python -m benchmarks.bench_followup [--turns 10]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient

QUESTIONS = [
    "Hi! Can you help me plan my week?",
    "What colour is my bike?",
    "What is my cat called?",
    "Remind me what I should buy for the cat.",
    "When is my sister's birthday?",
    "Which day is the market open?",
    "What did I say about my bike?",
    "Give me one tip for sleeping well.",
    "What is the capital of France?",
    "Thanks, summarize what we talked about in one sentence.",
]
NOTES = [
    "My bike is a green Brompton, bought in 2021.",
    "My cat is called Miso and likes salmon treats.",
    "My sister's birthday is on the 12th of March.",
    "The farmers' market is open on Saturdays from 8 to 13.",
    "Buy cat litter and salmon treats on Friday.",
]


@dataclass
class TurnFigures:
    turn: int
    ttft_ms: float
    prompt_tokens: int
    reused: int

    @property
    def evaluated(self) -> int:
        return self.prompt_tokens - self.reused


def run(memory_on: bool, turns: int) -> list[TurnFigures]:
    from assistant.app import create_app
    from assistant.config import load_settings
    from assistant.services import build_services

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            None, data_dir=Path(tmp), memory={"enabled": memory_on}, scheduler={"enabled": False},
            notify={"enabled": False}, server={"allowed_hosts": ["testserver"]},
        )  # fmt: skip
        services = build_services(settings)
        out: list[TurnFigures] = []
        with TestClient(create_app(services)) as client:
            if memory_on:
                for note in NOTES:
                    client.post("/api/memories", json={"text": note, "source": "note"}).raise_for_status()
            conversation = None
            for i, question in enumerate(QUESTIONS[:turns], 1):
                body: dict[str, object] = {
                    "messages": [{"role": "user", "content": question}], "stream": True, "max_tokens": 48,
                    "temperature": 0, "stream_options": {"include_usage": True},
                }  # fmt: skip
                if conversation:
                    body["conversation_id"] = conversation
                started = time.perf_counter()
                first: float | None = None
                usage: dict[str, int] = {}
                with client.stream("POST", "/v1/chat/completions", json=body) as r:
                    for line in r.iter_lines():
                        if not line.startswith("data: ") or line == "data: [DONE]":
                            continue
                        chunk = json.loads(line[6:])
                        conversation = chunk.get("conversation_id", conversation)
                        if first is None and any(c["delta"].get("content") for c in chunk.get("choices", [])):
                            first = time.perf_counter()
                        usage = chunk.get("usage") or usage
                reused = int(getattr(services.llm, "last_reused_tokens", 0))
                ttft = ((first or time.perf_counter()) - started) * 1000
                out.append(TurnFigures(i, ttft, int(usage.get("prompt_tokens", 0)), reused))
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=10)
    args = parser.parse_args()
    off = run(False, args.turns)
    on = run(True, args.turns)
    print("| turn | memory off: prompt / evaluated tokens, TTFT | memory on: prompt / evaluated tokens, TTFT |")
    print("|---|---|---|")
    for a, b in zip(off, on, strict=True):
        print(f"| {a.turn} | {a.prompt_tokens} / {a.evaluated}, {a.ttft_ms:.0f} ms "
              f"| {b.prompt_tokens} / {b.evaluated}, {b.ttft_ms:.0f} ms |")  # fmt: skip
    follow_off = sum(t.evaluated for t in off[1:]) / max(1, len(off) - 1)
    follow_on = sum(t.evaluated for t in on[1:]) / max(1, len(on) - 1)
    print(f"\nmean tokens evaluated per follow-up turn: memory off {follow_off:.0f}, memory on {follow_on:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
