"""Is the market open? The contract's own liquid hours first, the exchange calendar second.

IBKR's contract details carry ``liquidHours`` (regular hours) for the coming days, with holidays as
``CLOSED`` and early closes shortened: the Gateway's word on when quotes must be fresh and orders
fill. gatewatch prefers it, and falls back to the NYSE calendar (gatewatch.market_calendar) for days
the contract does not cover or before contract details have been fetched. The simulator publishes
hours that match its own market mode, so the same code judges both without special cases.

Formats seen in the field: ``20261125:0930-20261125:1600;20261126:CLOSED`` (current) and the older
``20090507:0930-1600,1700-1800;20090508:CLOSED`` (times without a date repeat the day's date).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gatewatch.market_calendar import NYSE, ExchangeCalendar

Interval = tuple[datetime, datetime]


def _stamp(day_text: str, hhmm: str, zone: ZoneInfo) -> datetime:
    day = datetime.strptime(day_text, "%Y%m%d")
    return day.replace(hour=int(hhmm[:2]), minute=int(hhmm[2:4]), tzinfo=zone)


def _endpoint(text: str, day_text: str, zone: ZoneInfo) -> datetime:
    """``20261125:0930`` or a bare ``0930`` (on ``day_text``) as an aware UTC datetime."""
    stamp_day, _, hhmm = text.rpartition(":")
    return _stamp(stamp_day or day_text, hhmm, zone).astimezone(UTC)


def parse_hours(text: str, time_zone_id: str) -> tuple[set[date], list[Interval]]:
    """Parse IBKR's tradingHours/liquidHours string into the days covered and open intervals (UTC).

    Unparseable parts are skipped rather than guessed: a day that is not covered falls back to
    the exchange calendar.
    """
    try:
        zone = ZoneInfo(time_zone_id or "America/New_York")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("America/New_York")
    covered: set[date] = set()
    intervals: list[Interval] = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        day_text, _, ranges = part.partition(":")
        try:
            day = datetime.strptime(day_text, "%Y%m%d").date()
        except ValueError:
            continue
        if ranges.upper() == "CLOSED":
            covered.add(day)
            continue
        parsed: list[Interval] = []
        try:
            for item in ranges.split(","):
                start_text, _, end_text = item.partition("-")
                start = _endpoint(start_text, day_text, zone)
                end = _endpoint(end_text, day_text, zone)
                if end > start:
                    parsed.append((start, end))
        except (ValueError, IndexError):
            continue
        covered.add(day)
        intervals.extend(parsed)
    return covered, intervals


@dataclass
class MarketHours:
    """Open/closed from the contract's liquid hours where known, else from the exchange calendar."""

    calendar: ExchangeCalendar = NYSE
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("America/New_York"))
    covered: set[date] = field(default_factory=set)
    intervals: list[Interval] = field(default_factory=list)

    @property
    def known(self) -> bool:
        """True once the Gateway's contract hours have been adopted."""
        return bool(self.covered)

    def update(self, liquid_hours: str, time_zone_id: str) -> None:
        """Adopt the hours from a contract-details answer (replaces what was known).

        Touching intervals are merged: a market open round the clock publishes one session per day
        (``0000-`` next day ``0000``), and a session crossing midnight is still one session.
        """
        covered, intervals = parse_hours(liquid_hours, time_zone_id)
        if covered:
            self.covered, self.intervals = covered, _merged(intervals)
            try:
                self.zone = ZoneInfo(time_zone_id)
            except (ZoneInfoNotFoundError, ValueError):
                self.zone = ZoneInfo("America/New_York")

    def source(self, when: datetime) -> str:
        """``contract`` if the contract's hours cover ``when``'s exchange date, else ``calendar``."""
        return "contract" if when.astimezone(self.zone).date() in self.covered else "calendar"

    def _interval(self, when: datetime) -> Interval | None:
        return next((iv for iv in self.intervals if iv[0] <= when < iv[1]), None)

    def is_open(self, when: datetime) -> bool:
        if self.source(when) == "contract":
            return self._interval(when) is not None
        return self.calendar.is_open(when)

    def session_close(self, when: datetime) -> datetime | None:
        """When the session open at ``when`` closes; None if the market is closed then."""
        if self.source(when) == "contract":
            interval = self._interval(when)
            return interval[1] if interval else None
        return self.calendar.session_close(when)

    def next_open(self, when: datetime) -> datetime:
        """The next session start after ``when`` (the contract's, else the calendar's)."""
        later = [start for start, _ in self.intervals if start > when]
        if self.source(when) == "contract" and later:
            return min(later)
        return self.calendar.next_open(when)

    def open_through(self, when: datetime, duration: timedelta) -> bool:
        """Open now and for ``duration`` (within one contract session, or one calendar session)."""
        if self.source(when) == "contract":
            close = self.session_close(when)
            return close is not None and when + duration <= close
        return self.calendar.open_through(when, duration)


def _merged(intervals: list[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out
