"""kill -9 of a real process between setting a timer and its firing, and at each step of the firing: after
the restart it fires exactly once."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from assistant.notify.outbox import Outbox
from assistant.notify.service import Notifier
from assistant.reminders.service import ReminderService
from assistant.reminders.store import FIRED, ReminderStore
from tests.fakes import FixedClock

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 6, 16, 20, tzinfo=UTC)

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import datetime, timedelta, UTC
    from pathlib import Path
    from zoneinfo import ZoneInfo
    from assistant.notify.outbox import Outbox
    from assistant.notify.service import Notifier
    from assistant.reminders.service import ReminderService
    from assistant.reminders.store import ReminderStore
    from tests.fakes import FixedClock

    data, step = Path(sys.argv[1]), sys.argv[2]
    clock = FixedClock(datetime(2026, 3, 6, 16, 20, tzinfo=UTC))
    notifier = Notifier(Outbox(data / "notifications.sqlite3"), clock)
    service = ReminderService(ReminderStore(data / "reminders.sqlite3"), notifier, clock, ZoneInfo("Europe/Berlin"))
    made = service.create_text("set a timer for 2 minutes", source="cli")
    print(made.reminder.id, flush=True)
    if step != "set":
        clock.advance(minutes=2)
        key = service.store.claim(made.reminder.id, clock.now())
        if step == "notified":
            service._send(service.get(made.reminder.id), key, clock.now())
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


@pytest.mark.parametrize("step", ["set", "claimed", "notified"])
def test_kill_9_then_restart_fires_exactly_once(tmp_path: Path, step: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(data), step], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    rid = child.stdout.strip()
    clock = FixedClock(NOW + timedelta(minutes=5))
    notifier = Notifier(Outbox(data / "notifications.sqlite3"), clock)
    service = ReminderService(ReminderStore(data / "reminders.sqlite3"), notifier, clock, ZoneInfo("Europe/Berlin"))
    service.recover()
    service.fire_due()
    service.fire_due()
    mine = [s for s in notifier.history(100) if (s.notification.data or {}).get("reminder_id") == rid]
    assert len(mine) == 1
    assert service.get(rid).state == FIRED
