"""Quiet hours: a daily local-time window (e.g. "22:00-07:00") during which non-urgent notifications wait.

Times are wall-clock times in the configured zone (a zoneinfo name), so the window follows DST: on the
night the clocks change, "22:00-07:00" still ends at 07:00 local time (8 or 10 real hours later). A window
may cross midnight. If the end time does not exist that day (it falls in a DST gap), the window ends when
the clocks jump past it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from assistant.core.localtime import get_zone, parse_quiet_hours


def _exists(naive: datetime, tz: ZoneInfo) -> bool:
    """False when the wall-clock time falls in a DST gap (the clocks skip it)."""
    round_trip = naive.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    return round_trip == naive


def local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The first UTC instant at which the local wall clock reads ``at`` or later on ``day``.

    An ambiguous time (clocks go back) is its first occurrence; a skipped one is the moment of the jump.
    """
    naive = datetime.combine(day, at)
    for _ in range(24 * 60):
        if _exists(naive, tz):
            return naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
        naive += timedelta(minutes=1)
    raise ValueError(f"no valid local time after {day} {at} in {tz}")  # pragma: no cover - no such zone


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time
    tz: ZoneInfo

    @classmethod
    def parse(cls, text: str, tz_name: str) -> QuietHours:
        start, end = parse_quiet_hours(text)
        return cls(start, end, get_zone(tz_name))

    def _in_window(self, t: time) -> bool:
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end  # crosses midnight

    def is_quiet(self, now: datetime) -> bool:
        return self._in_window(now.astimezone(self.tz).time().replace(tzinfo=None))

    def ends_at(self, now: datetime) -> datetime | None:
        """When the quiet period containing ``now`` ends (aware UTC), or None when ``now`` is not quiet."""
        local = now.astimezone(self.tz)
        t = local.time().replace(tzinfo=None)
        if not self._in_window(t):
            return None
        day = local.date()
        if self.start > self.end and t >= self.start:
            day += timedelta(days=1)  # the evening part of a window that crosses midnight
        return local_instant(day, self.end, self.tz)

    def release_at(self, now: datetime, urgent: bool) -> datetime:
        """When a notification created at ``now`` may be delivered."""
        if urgent:
            return now
        return self.ends_at(now) or now
