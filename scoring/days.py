"""Instants, business days and the timezone they are counted in.

A day is a proleptic Gregorian ordinal (``date.toordinal()``) so window arithmetic is
plain integer arithmetic; an instant is integer microseconds since the Unix epoch.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

Day = int

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# The days an event or eod may fall on: the calendar's, less its last (a close moves the
# clock to the next day, and 9999-12-31 has none).
FIRST_DAY = date.min.toordinal()
LAST_DAY = date.max.toordinal() - 1
_US_PER_DAY = 86_400_000_000

# RFC 3339 date-time; fractional digits beyond microseconds are accepted and ignored.
_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


# Caches of validated pieces of timestamps: nearly every timestamp of a stream shares its
# date and offset with many others. Bounded so hostile input cannot grow them for ever.
_CACHE_LIMIT = 100_000
_DATES: dict[str, Day] = {}
_CLOCKS: dict[str, int] = {}
_OFFSETS: dict[str, int] = {}


def parse_instant(text: str) -> int:
    """RFC 3339 with an offset -> microseconds since the epoch; ValueError if malformed."""
    if len(text) in (20, 25) and text[10] in "Tt":  # no fraction: try the cached pieces
        day = _DATES.get(text[:10])
        clock = _CLOCKS.get(text[10:19])
        offset = _OFFSETS.get(text[19:])
        if day is not None and clock is not None and offset is not None:
            return ((day - _EPOCH_ORDINAL) * 86_400 + clock - offset) * 1_000_000
    return _parse_instant(text)


def _parse_instant(text: str) -> int:
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise ValueError("not an RFC 3339 date-time with an offset")
    y, mo, d, h, mi, s, frac, zulu, sign, oh, om = m.groups()
    us = int((frac + "00000")[:6]) if frac else 0
    # datetime() validates the calendar (no 30 February, no hour 24); leap seconds are refused.
    day = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s)).toordinal()
    offset = 0
    if not zulu:
        if int(oh) > 23 or int(om) > 59:
            raise ValueError("offset out of range")
        offset = (int(oh) * 3600 + int(om) * 60) * (1 if sign == "+" else -1)
    clock = int(h) * 3600 + int(mi) * 60 + int(s)
    if len(_DATES) < _CACHE_LIMIT and len(_CLOCKS) < _CACHE_LIMIT and len(_OFFSETS) < _CACHE_LIMIT:
        _DATES[text[:10]] = day
        _CLOCKS[text[10:19]] = clock  # with the separator, so "T" and "t" are both checked
        _OFFSETS[text[m.end(7) if frac else 19 :]] = offset
    return ((day - _EPOCH_ORDINAL) * 86_400 + clock - offset) * 1_000_000 + us


def parse_day(text: str) -> Day:
    """``YYYY-MM-DD`` -> day ordinal; ValueError if malformed."""
    m = _DATE.fullmatch(text)
    if m is None:
        raise ValueError("not a YYYY-MM-DD date")
    return date(int(m[1]), int(m[2]), int(m[3])).toordinal()


def format_day(day: Day) -> str:
    return date.fromordinal(day).isoformat()


class Zone:
    """The rules' timezone: maps instants to business days and back."""

    __slots__ = ("_tz", "_utc", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._tz = ZoneInfo(name)  # raises ZoneInfoNotFoundError for an unknown zone
        self._utc = name in ("UTC", "Etc/UTC", "Etc/GMT", "GMT")

    def day_of(self, instant_us: int) -> Day:
        if self._utc:
            return _EPOCH_ORDINAL + instant_us // _US_PER_DAY
        seconds, us = divmod(instant_us, 1_000_000)
        moment = datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=us)
        return moment.astimezone(self._tz).date().toordinal()

    def start_of(self, day: Day) -> str:
        """The first instant of ``day`` in this zone, RFC 3339 with its offset."""
        return _start_of(self._tz, day)


@lru_cache(maxsize=4096)
def _start_of(tz: ZoneInfo, day: Day) -> str:
    d = date.fromordinal(day)
    return datetime(d.year, d.month, d.day, tzinfo=tz).isoformat()
