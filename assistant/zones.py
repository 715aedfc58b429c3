"""Time zone names: validation (a clear 400) and a cheap lookup of a zone by city name."""

from __future__ import annotations

import functools
import zoneinfo
from zoneinfo import ZoneInfo

from assistant.errors import BadRequest


def get_zone(name: str) -> ZoneInfo:
    """The IANA zone called ``name`` (e.g. "Europe/Berlin"), or BadRequest saying it is unknown."""
    try:
        return ZoneInfo(name.strip())
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise BadRequest(
            f"unknown timezone {name!r}: use an IANA name such as 'Europe/Berlin' or 'America/New_York'",
            code="bad_timezone",
        ) from None


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
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return None
        return text
    if text.upper() == "UTC":
        return "UTC"
    return _cities().get(text.lower())
