"""Local time: the one time-zone validator, a cheap lookup of a zone by city name, and daily windows
("22:00-07:00") as used by quiet hours."""

from __future__ import annotations

import functools
import re
import zoneinfo
from datetime import time
from zoneinfo import ZoneInfo

from assistant.core.errors import BadRequest


class UnknownTimezone(BadRequest):
    """A time-zone name that zoneinfo does not know (a 400 from the API, one line from config)."""


def get_zone(name: str) -> ZoneInfo:
    """The IANA zone called ``name`` (e.g. "Europe/Berlin"), or UnknownTimezone saying it is unknown.

    This is the only place a zone name is checked: settings, schedules, skills and quiet hours call it."""
    try:
        return ZoneInfo(name.strip())
    # OSError: a directory of the zone database ("America" -> IsADirectoryError), a name too long for a path.
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError, AttributeError, OSError):
        shown = name if not isinstance(name, str) or len(name) <= 80 else name[:80] + "..."
        raise UnknownTimezone(
            f"unknown timezone {shown!r}: use an IANA name such as 'Europe/Berlin' or 'America/New_York'",
            code="bad_timezone",
        ) from None


def check_zone_name(name: str) -> str:
    """``name`` when it is a known zone, else ValueError (for pydantic validators)."""
    try:
        get_zone(name)
    except UnknownTimezone as exc:
        raise ValueError(exc.message) from None
    return name


_WINDOW_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_quiet_hours(text: str) -> tuple[time, time]:
    """ "22:00-07:00" -> (time(22, 0), time(7, 0)); ValueError with the reason otherwise."""
    m = _WINDOW_RE.match(text)
    if not m:
        raise ValueError(f'quiet hours must look like "22:00-07:00" (HH:MM-HH:MM), got {text!r}')
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if not (0 <= h1 <= 23 and 0 <= h2 <= 23 and 0 <= m1 <= 59 and 0 <= m2 <= 59):
        raise ValueError(f"quiet hours {text!r}: hours must be 00-23 and minutes 00-59")
    start, end = time(h1, m1), time(h2, m2)
    if start == end:
        raise ValueError(f"quiet hours {text!r}: start and end are the same time")
    return start, end


@functools.cache
def _cities() -> dict[str, str]:
    cities: dict[str, str] = {}
    for key in sorted(zoneinfo.available_timezones()):
        if "/" not in key or key.startswith(("Etc/", "SystemV/", "posix/", "right/")):
            continue
        city = key.rsplit("/", 1)[1].replace("_", " ").lower()
        cities.setdefault(city, key)
    return cities


def zone_for_place(place: str) -> str | None:
    """ "Tokyo" -> "Asia/Tokyo", "new york" -> "America/New_York"; a full IANA name is returned as is."""
    text = place.strip().strip("?.!").strip()
    if not text:
        return None
    if "/" in text:
        try:
            ZoneInfo(text)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            return None
        return text
    if text.upper() == "UTC":
        return "UTC"
    return _cities().get(text.lower())
