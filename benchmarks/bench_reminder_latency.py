"""How late a fired timer reaches the SSE stream: five 2-second timers set through /api/reminders on a real
uvicorn app (system clock, fake model), each timed from its due time to its event on
/api/notifications/stream.

    .venv/bin/python benchmarks/bench_reminder_latency.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(timers: int = 5) -> None:
    import httpx

    from assistant.app import create_app
    from assistant.config import load_settings
    from assistant.core.clock import SystemClock
    from assistant.services import build_services
    from tests.fakes import FakeLLM
    from tests.server import serve_app

    with tempfile.TemporaryDirectory() as d:
        settings = load_settings(
            None, data_dir=Path(d), memory={"enabled": False}, scheduler={"enabled": False},
            notify={"desktop": False}, server={"allowed_hosts": ["127.0.0.1"]},
        )  # fmt: skip
        services = build_services(settings, clock=SystemClock(), llm=FakeLLM())
        with serve_app(create_app(services)) as url, httpx.Client(timeout=15) as client:
            with client.stream("GET", url + "/api/notifications/stream") as stream:
                lines = stream.iter_lines()
                for _ in range(timers):
                    r = httpx.post(url + "/api/reminders", json={"kind": "timer", "in_seconds": 2})
                    due = datetime.fromisoformat(r.json()["due_at"])
                    for line in lines:
                        if line.startswith("data:") and json.loads(line[5:])["source"] == "reminders":
                            late = (datetime.now(UTC) - due).total_seconds() * 1000
                            print(f"timer event on the stream {late:.0f} ms after its due time")
                            break


if __name__ == "__main__":
    main()
