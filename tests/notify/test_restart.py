"""Nothing acknowledged is lost on kill -9: a process that acknowledged notifications (its webhook was down)
is SIGKILLed; a new Notifier on the same data dir delivers every one of them to a now-working receiver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.config import load_settings
from assistant.core.clock import SystemClock
from assistant.notify import build_notifier
from tests.notify_receiver import Receiver

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, sys
from assistant.core.clock import SystemClock
from assistant.core.clock import SystemClock
from assistant.config import load_settings
from assistant.notify import build_notifier

settings = load_settings(None, data_dir=sys.argv[1], notify={"desktop": False, "webhook_url": sys.argv[2]})
notifier = build_notifier(settings, SystemClock())
notifier.start()  # the delivery thread keeps trying the dead webhook
for i in range(5):
    n = notifier.notify(f"note {i}", "body " + "x" * i, source="restart-test", data={"i": i})
    print(json.dumps(n.to_json()), flush=True)  # acknowledged
print("READY", flush=True)
sys.stdin.read()  # wait to be killed
"""


def test_undelivered_notifications_survive_kill_9(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with Receiver(fail_first=10_000, fail_status=503) as down:  # up, but refusing everything
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(data_dir), down.url + "/hook"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=REPO,
            env=env,
            text=True,
        )
        try:
            assert child.stdout is not None
            acked = []
            for line in child.stdout:
                if line.strip() == "READY":
                    break
                acked.append(json.loads(line))
            assert len(acked) == 5, child.stderr.read() if child.stderr else ""
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert child.returncode == -signal.SIGKILL
        assert all(r.status == 503 for r in down.all())  # it tried, and nothing was accepted

    with Receiver() as up:
        settings = load_settings(
            None, data_dir=data_dir, notify={"desktop": False, "webhook_url": up.url + "/hook"}
        )
        notifier = build_notifier(settings, SystemClock())  # the child wrote with the real clock
        try:
            report = notifier.deliver_due()
            assert report.delivered == {"webhook": 5}
            assert [r.json() for r in up.accepted()] == acked  # every acknowledged one, exactly once, as sent
            assert notifier.deliver_due().delivered == {}
            assert len(up.all()) == 5
            # The SSE replay still knows them after the restart.
            assert [n.id for n, _ in notifier.outbox.released_after(0)] == [a["id"] for a in acked]
            assert all(s.channels[0].status == "delivered" for s in notifier.history(10, 0))
        finally:
            notifier.close()
