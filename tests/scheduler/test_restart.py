"""Schedules survive kill -9: a subprocess adds schedules to the real SQLAlchemy job store (through the
real build_services wiring), answers, and is SIGKILLed; a new scheduler on the same data dir has them,
with the same next run times, pause state and arguments."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from assistant.config import load_settings
from assistant.services import build_services
from tests.fakes import FakeLLM, FixedClock

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from assistant.config import load_settings
    from assistant.services import build_services
    from tests.fakes import FakeLLM

    settings = load_settings(None, data_dir=Path(sys.argv[1]), memory={"enabled": False},
                             notify={"enabled": False}, timezone="Europe/Berlin")
    services = build_services(settings, llm=FakeLLM())
    services.start()
    sched = services.scheduler
    a = sched.add("time", "every weekday at 7:30", args={"phrase": False}, timezone="America/New_York")
    b = sched.add("digest", "every 15 minutes", args={"limit": "5"})
    c = sched.add("seuss", "every day at 8")
    sched.pause(c.id)
    d = sched.add("time", "hourly")
    sched.remove(d.id)
    added = [x.to_json() for x in (a, b, sched.get(c.id))]
    print(json.dumps({"added": added, "removed": d.id}), flush=True)
    sys.stdin.read()  # wait here to be killed
    """
)


def test_schedules_survive_kill_9(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read().decode() if proc.stderr else "child said nothing"
        told = json.loads(line)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    settings = load_settings(None, data_dir=data, memory={"enabled": False}, notify={"enabled": False})
    services = build_services(settings, clock=FixedClock(), llm=FakeLLM())
    try:
        listed = {s.id: s.to_json() for s in services.scheduler.list()}  # opened, not started: nothing runs
        assert set(listed) == {s["id"] for s in told["added"]}
        assert told["removed"] not in listed
        for before in told["added"]:
            after = listed[before["id"]]
            for key in ("skill", "args", "schedule", "cron", "interval_seconds", "timezone", "paused",
                        "next_run_time"):  # fmt: skip
                assert after[key] == before[key], key
        a, b, c = told["added"]
        assert a["timezone"] == "America/New_York" and a["next_run_time"].endswith(("-05:00", "-04:00"))
        assert b["args"] == {"limit": "5"} and b["interval_seconds"] == 900
        assert c["paused"] and c["next_run_time"] is None
    finally:
        services.close()
