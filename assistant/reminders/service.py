"""The reminder service: create from words or fields, list, change, cancel, snooze, and fire on time.

Firing is driven by the injected clock (``fire_due(now)``, which tests call with a moved FixedClock); the
background thread only calls it. A fired reminder, timer or alarm is a notification (every channel, SSE
included); timers and alarms are urgent (they pass quiet hours), reminders are not. One missed while the
daemon was down fires at start, its text saying how late. See assistant.reminders.store for why a crash
never fires one twice or loses it. Every change and every firing of one reminder hold one lock, so a cancel
or snooze "at the moment it fires" lands before the firing (nothing is sent) or after it (the answer says
it already went off), never both.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from assistant.core.clock import Clock
from assistant.core.errors import BadRequest, NotFound
from assistant.reminders.parse import (
    ALARM,
    REMINDER,
    TIMER,
    Clarify,
    Parsed,
    describe_day,
    describe_in,
    next_fire,
    parse_request,
)
from assistant.reminders.store import CANCELLED, FIRED, FIRING, PENDING, Reminder, ReminderStore

log = logging.getLogger(__name__)
SOURCE = "reminders"
LATE_AFTER = timedelta(seconds=60)  # fired later than this after its time: the text says how late
KINDS = (REMINDER, TIMER, ALARM)


class NotificationOut(Protocol):
    """What the service needs of assistant.notify.service.Notifier."""

    def notify(
        self, title: str, body: str, *, source: str, urgent: bool = False, data: dict[str, Any] | None = None
    ) -> Any: ...

    def history(self, limit: int = 50, offset: int = 0) -> list[Any]: ...


class MemoryNote(Protocol):
    def add(
        self, text: str, source: str = "note", conversation_id: str | None = None,
        metadata: Mapping[str, Any] | None = None, *, provenance: str,
    ) -> Any: ...  # fmt: skip


@dataclass(frozen=True)
class Created:
    reminder: Reminder
    text: str  # the confirmation: local time and day, how long until, assumptions


class ReminderService:
    def __init__(
        self,
        store: ReminderStore,
        notifier: NotificationOut,
        clock: Clock,
        zone: ZoneInfo,
        *,
        memory: MemoryNote | None = None,
        poll_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.clock = clock
        self.zone = zone
        self.memory = memory
        self.poll_seconds = poll_seconds
        self._lock = threading.RLock()  # one change or firing at a time
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- creating ----------------------------------------------------------------------------------------

    def parse(self, text: str) -> Parsed | Clarify | None:
        return parse_request(text, self.clock.now(), self.zone)

    def create_text(self, text: str, *, source: str, conversation_id: str | None = None) -> Created | Clarify:
        """A reminder from the user's own words; Clarify when a question must be asked first."""
        parsed = self.parse(text)
        if parsed is None:
            raise BadRequest(
                'not a reminder, timer or alarm: say e.g. "remind me in 20 minutes to take the pasta out", '
                '"set a timer for 10 minutes" or "wake me up at 6:45 tomorrow"', code="bad_reminder",
            )  # fmt: skip
        if isinstance(parsed, Clarify):
            return parsed
        return self._add(parsed, source=source, said=text, conversation_id=conversation_id)

    def create(
        self, *, kind: str, what: str, due_at: datetime | None = None, in_seconds: float | None = None,
        schedule: str | None = None, source: str = "api",
    ) -> Created:  # fmt: skip
        """A reminder from fields (the API): a time, seconds from now, or a schedule ("every monday at 7")."""
        if kind not in KINDS:
            raise BadRequest(f"kind must be one of {', '.join(KINDS)}", code="bad_reminder")
        now = self.clock.now()
        if schedule:
            due_at = next_fire(schedule, self.zone, now)
        elif in_seconds is not None:
            if in_seconds <= 0:
                raise BadRequest("in_seconds must be positive", code="bad_reminder")
            due_at = now + timedelta(seconds=in_seconds)
        if due_at is None:
            raise BadRequest("give due_at, in_seconds or schedule", code="bad_reminder")
        if due_at.tzinfo is None:
            due_at = due_at.replace(tzinfo=self.zone)
        duration = int(in_seconds) if kind == TIMER and in_seconds else None
        parsed = Parsed(kind, what.strip(), due_at, schedule=schedule, duration_s=duration,
                        at_clock=in_seconds is None)  # fmt: skip
        return self._add(parsed, source=source, said="")

    def _add(self, parsed: Parsed, *, source: str, said: str, conversation_id: str | None = None) -> Created:
        now = self.clock.now()
        quiet = getattr(self.notifier, "quiet", None)  # the Notifier's QuietHours, if any
        on_purpose = parsed.at_clock and quiet is not None and bool(quiet.is_quiet(parsed.due))
        with self._lock:
            reminder = self.store.add(
                kind=parsed.kind, what=parsed.what, due_at=parsed.due, schedule=parsed.schedule,
                zone=self.zone.key, created_at=now, source=source, said=said, duration_s=parsed.duration_s,
                pass_quiet=on_purpose,
            )  # fmt: skip
        self._wake.set()
        text = self.confirmation(reminder, parsed.notes)
        self._remember(reminder, conversation_id)
        return Created(reminder, text)

    def _remember(self, reminder: Reminder, conversation_id: str | None) -> None:
        if self.memory is None:
            return
        from assistant.core.recall import USER

        said = f' ("{reminder.said}")' if reminder.said else ""
        what = f"{reminder.what} " if reminder.what else ""
        at = self._local(reminder.due_at, "%H:%M on %A %d %B %Y")  # dated: the memory outlives "tomorrow"
        every = f" ({reminder.schedule})" if reminder.schedule else ""
        day = self._local(reminder.created_at, "%A %d %B %Y")
        text = f"On {day} I set a {reminder.kind}{said}: {what}at {at}{every}."
        try:
            meta = {"reminder_id": reminder.id, "reminder_kind": reminder.kind}
            self.memory.add(text, "note", conversation_id, meta, provenance=USER)  # the user's own note
        except Exception:  # noqa: BLE001 - the reminder is set; the memory of it is a bonus
            log.exception("storing reminder %s in memory failed", reminder.id)

    # -- words ---------------------------------------------------------------------------------------------

    def _local(self, when: datetime, fmt: str = "%H:%M") -> str:
        return when.astimezone(self.zone).strftime(fmt)

    def when(self, reminder: Reminder) -> str:
        """ "take the pasta out at 18:42 today" / "every monday at 07:00, next at 07:00 on Monday 9 March"."""
        now = self.clock.now()
        at = f"{self._local(reminder.due_at)} {describe_day(reminder.due_at, now, self.zone)}"
        what = f"{reminder.what} " if reminder.what else ""
        if reminder.schedule:
            return f"{what}{reminder.schedule}, next at {at}"
        return f"{what}at {at}"

    def confirmation(self, reminder: Reminder, notes: tuple[str, ...] = ()) -> str:
        now = self.clock.now()
        at = f"{self._local(reminder.due_at)} {describe_day(reminder.due_at, now, self.zone)}"
        left = describe_in(reminder.due_at - now)
        if reminder.kind == TIMER:
            label = f"{reminder.what} timer" if reminder.what else "Timer"
            length = describe_in(timedelta(seconds=reminder.duration_s or 0))
            text = f"{label[0].upper()}{label[1:]} set for {length}: it goes off at {at}."
        elif reminder.kind == ALARM:
            every = f" {reminder.schedule};" if reminder.schedule else ""
            text = f"Alarm set{every} for {at}, in {left}."
        else:
            what = f" to {reminder.what}" if reminder.what else ""
            if reminder.schedule:
                text = f"I'll remind you{what} {reminder.schedule}; the first time is {at}, in {left}."
            else:
                text = f"I'll remind you{what} at {at}, in {left}."
        if notes:
            text += f" ({'; '.join(notes)}.)"
        return text

    def describe(self, reminder: Reminder) -> str:
        """One line of a list: what, when, how long is left, the id."""
        now = self.clock.now()
        if reminder.kind == TIMER:
            name = f"{reminder.what} timer" if reminder.what else "timer"
        elif reminder.kind == ALARM:
            name = "alarm"
        else:
            name = f"reminder to {reminder.what}" if reminder.what else "reminder"
        at = f"{self._local(reminder.due_at)} {describe_day(reminder.due_at, now, self.zone)}"
        every = f", {reminder.schedule}" if reminder.schedule else ""
        return f"{name}: {at} (in {describe_in(reminder.due_at - now)}){every} [{reminder.id}]"

    # -- reading and changing ------------------------------------------------------------------------------

    def reminders(self, *, include_done: bool = False) -> list[Reminder]:
        return self.store.all() if include_done else self.store.active()

    def get(self, rid: str) -> Reminder:
        found = self.store.get(rid)
        if found is None:
            raise NotFound(f"no reminder {rid!r}")
        return found

    def find(self, words: str, *, states: tuple[str, ...] = (PENDING,)) -> list[Reminder]:
        """Reminders whose words hold all of ``words`` ("the rent reminder" -> "rent")."""
        wanted = [w for w in words.lower().split() if w not in _FILLER]
        pool = [r for r in self.store.all(1000) if r.state in states]
        return [r for r in pool if all(w in f"{r.what} {r.kind} {r.said}".lower() for w in wanted)]

    def cancel(self, rid: str) -> Reminder:
        """Cancel a pending reminder; BadRequest when it already went off (it was not cancelled)."""
        with self._lock:
            reminder = self.get(rid)
            if reminder.state == CANCELLED:
                return reminder
            if not self.store.cancel(rid):
                raise BadRequest(f"the {reminder.kind} {rid} already went off", code="already_fired")
            return self.get(rid)

    def delete(self, rid: str) -> bool:
        with self._lock:
            return self.store.delete(rid)

    def snooze(self, rid: str | None = None, minutes: float = 10) -> Reminder:
        """Fire again ``minutes`` from now: ``rid``, or the one that fired last."""
        with self._lock:
            reminder = self.get(rid) if rid else self.store.last_fired()
            if reminder is None:
                raise NotFound("nothing has gone off yet to snooze")
            if reminder.state == CANCELLED:
                raise BadRequest(f"the {reminder.kind} {reminder.id} was cancelled", code="cancelled")
            due = self.clock.now() + timedelta(minutes=minutes)
            if reminder.schedule:  # a recurring one: an extra one-off, the series stays
                return self._add(
                    Parsed(reminder.kind, reminder.what, due), source=reminder.source, said=reminder.said
                ).reminder
            if not self.store.reschedule(reminder.id, due, states=(FIRED, PENDING)):
                raise BadRequest(f"the {reminder.kind} {reminder.id} cannot be snoozed", code="bad_reminder")
            self._wake.set()
            return self.get(reminder.id)

    def move(self, rid: str, due_at: datetime) -> Reminder:
        with self._lock:
            reminder = self.get(rid)
            if not self.store.reschedule(rid, due_at, states=(PENDING, FIRED)):
                raise BadRequest(f"the {reminder.kind} {rid} is {reminder.state}", code="bad_reminder")
            self._wake.set()
            return self.get(rid)

    def rename(self, rid: str, what: str) -> Reminder:
        with self._lock:
            if not self.store.update(rid, what=what.strip()):
                raise BadRequest(f"reminder {rid} is not pending", code="bad_reminder")
            return self.get(rid)

    # -- firing --------------------------------------------------------------------------------------------

    def fire_due(self, now: datetime | None = None) -> list[Reminder]:
        """Send every reminder that is due (late ones say how late); answers the ones sent."""
        now = now or self.clock.now()
        sent = []
        for reminder in self.store.due(now):
            with self._lock:
                key = self.store.claim(reminder.id, now)
                if key is None:
                    continue  # cancelled or moved just now
                nid = self._send(reminder, key, now)
                self._finish(reminder, key, nid, now)
            sent.append(reminder)
        return sent

    def recover(self) -> int:
        """Finish the firings a crash interrupted: sent already (the outbox holds the key) or send now."""
        done = 0
        for reminder in self.store.firing():
            assert reminder.fire_key is not None and reminder.firing_at is not None
            with self._lock:
                nid = self._sent_with(reminder.fire_key, reminder.firing_at)
                now = self.clock.now()
                if nid is None:
                    nid = self._send(reminder, reminder.fire_key, now)
                self._finish(reminder, reminder.fire_key, nid, now)
            done += 1
        return done

    def _sent_with(self, key: str, since: datetime) -> int | None:
        """The id of the notification that carries ``key``: the outbox, newest first, back to ``since``."""
        offset, page = 0, 200
        while True:
            rows = self.notifier.history(page, offset)
            for status in rows:
                n = status.notification
                if n.source == SOURCE and (n.data or {}).get("fire_key") == key:
                    return int(n.id)
            if len(rows) < page:
                return None
            created = datetime.fromisoformat(rows[-1].notification.created_at)
            if created < since - timedelta(hours=1):
                return None
            offset += page

    def _send(self, reminder: Reminder, key: str, now: datetime) -> int:
        late = now - reminder.due_at
        if reminder.kind == TIMER:
            title = f"Timer done: {reminder.what}" if reminder.what else "Timer done"
            length = describe_in(timedelta(seconds=reminder.duration_s or 0))
            body = f"The {reminder.what + ' ' if reminder.what else ''}timer ({length}) is done."
        elif reminder.kind == ALARM:
            title = "Alarm"
            body = f"It's {self._local(reminder.due_at)}: time to wake up."
        else:
            title = f"Reminder: {reminder.what}" if reminder.what else "Reminder"
            body = f"You asked me to remind you{' to ' + reminder.what if reminder.what else ''}."
        data: dict[str, Any] = {"reminder_id": reminder.id, "kind": reminder.kind, "fire_key": key,
                                "due_at": reminder.due_at.isoformat()}  # fmt: skip
        if late > LATE_AFTER:
            body += f" (Late by {describe_in(late)}: it was due at {self._local(reminder.due_at)} " \
                    f"{describe_day(reminder.due_at, now, self.zone)}.)"  # fmt: skip
            data["late_s"] = round(late.total_seconds())
        notification = self.notifier.notify(
            title[:300], body, source=SOURCE, urgent=reminder.urgent, data=data
        )
        return int(notification.id)

    def _finish(self, reminder: Reminder, key: str, nid: int, now: datetime) -> None:
        next_due = None
        if reminder.schedule:
            try:
                next_due = next_fire(reminder.schedule, ZoneInfo(reminder.zone), max(now, reminder.due_at),
                                     previous=reminder.due_at)  # fmt: skip
                while next_due <= now:  # missed several while down: one late notice, then the next one ahead
                    next_due = next_fire(
                        reminder.schedule, ZoneInfo(reminder.zone), next_due, previous=next_due
                    )
            except Exception:  # noqa: BLE001 - a schedule that cannot be read any more ends
                log.exception("reminder %s: cannot work out its next time", reminder.id)
        self.store.finish(reminder.id, key, nid, now, next_due)

    # -- background thread ---------------------------------------------------------------------------------

    def start(self) -> None:
        self.recover()
        self.fire_due()
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="reminders", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.fire_due()
            except Exception:  # noqa: BLE001 - keep firing; the next pass retries
                log.exception("firing reminders failed")
            wait = self.poll_seconds
            nxt = self.store.next_due()
            if nxt is not None:
                wait = max(0.02, min(wait, (nxt - self.clock.now()).total_seconds()))
            self._wake.wait(wait)
            self._wake.clear()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.store.close()


_FILLER = {
    "the",
    "a",
    "an",
    "my",
    "reminder",
    "reminders",
    "timer",
    "alarm",
    "for",
    "to",
    "about",
    "me",
    "that",
}
FIRED_STATES = (FIRED, FIRING)


def build_reminders(
    settings: Any, clock: Clock, notifier: NotificationOut, memory: MemoryNote | None
) -> ReminderService:
    """The real service: the store under the data dir, the user's zone, memory when it is on."""
    from assistant.core.localtime import get_zone

    store = ReminderStore(settings.data_dir / "reminders.sqlite3")
    return ReminderService(store, notifier, clock, get_zone(settings.timezone), memory=memory)
