"""NYSE regular trading hours, holidays and early closes, computed from the exchange's rules.

Why not a calendar library at run time: exchange_calendars pulls in pandas and numpy (tens of MB of
resident memory on a Raspberry Pi) to answer "is the market open now?". The rules below are the
NYSE's published ones; the test suite checks them day by day against exchange_calendars' XNYS
calendar, so the two cannot drift apart unnoticed. Ad-hoc closures (national days of mourning) are
listed by hand in :data:`ADHOC_CLOSURES`; a contract's own ``liquidHours`` from contract details
remain the authority on the day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

EASTERN = ZoneInfo("America/New_York")
REGULAR_OPEN = time(9, 30)
REGULAR_CLOSE = time(16, 0)
EARLY_CLOSE = time(13, 0)

ADHOC_CLOSURES: frozenset[date] = frozenset(
    {
        date(2012, 10, 29),  # Hurricane Sandy
        date(2012, 10, 30),
        date(2018, 12, 5),  # President G. H. W. Bush, day of mourning
        date(2025, 1, 9),  # President Carter, day of mourning
    }
)


def _easter(year: int) -> date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th given weekday (Mon=0) of a month; n=-1 is the last."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: date, *, saturday_to_friday: bool = True) -> date | None:
    """NYSE observance: Saturday holidays move to Friday, Sunday ones to Monday."""
    if day.weekday() == 5:
        return day - timedelta(days=1) if saturday_to_friday else None
    if day.weekday() == 6:
        return day + timedelta(days=1)
    return day


@lru_cache(maxsize=64)
def holidays(year: int) -> frozenset[date]:
    """Full-day closures of the NYSE in ``year``."""
    days: set[date | None] = {
        # New Year's Day: a Saturday one is not moved back into the old year.
        _observed(date(year, 1, 1), saturday_to_friday=False),
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        _easter(year) - timedelta(days=2),  # Good Friday
        _nth_weekday(year, 5, 0, -1),  # Memorial Day
        _observed(date(year, 7, 4)),  # Independence Day
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
        _observed(date(year, 12, 25)),  # Christmas
    }
    if year >= 2022:
        days.add(_observed(date(year, 6, 19)))  # Juneteenth
    days.update(d for d in ADHOC_CLOSURES if d.year == year)
    return frozenset(d for d in days if d is not None)


@lru_cache(maxsize=64)
def early_closes(year: int) -> frozenset[date]:
    """Days the NYSE closes at 13:00 ET in ``year``."""
    days: set[date] = {_nth_weekday(year, 11, 3, 4) + timedelta(days=1)}  # day after Thanksgiving
    july4 = date(year, 7, 4)
    if july4.weekday() in (1, 2, 3, 4):  # Tue-Fri: the day before closes early
        days.add(july4 - timedelta(days=1))
    christmas_eve = date(year, 12, 24)
    if christmas_eve.weekday() < 4:  # Mon-Thu (a Friday Dec 24 is the observed Christmas holiday)
        days.add(christmas_eve)
    return frozenset(d for d in days if d not in holidays(year))


@dataclass(frozen=True)
class Session:
    """One trading day's regular session, as aware UTC datetimes."""

    day: date
    open: datetime
    close: datetime

    @property
    def early_close(self) -> bool:
        return self.close.astimezone(EASTERN).time() == EARLY_CLOSE


class ExchangeCalendar:
    """Regular-hours calendar of one exchange (the NYSE rules above)."""

    name = "NYSE"

    def is_trading_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in holidays(day.year)

    def session(self, day: date) -> Session | None:
        """The regular session on ``day`` (an Eastern date), or None on a weekend or holiday."""
        if not self.is_trading_day(day):
            return None
        close_time = EARLY_CLOSE if day in early_closes(day.year) else REGULAR_CLOSE
        open_dt = datetime.combine(day, REGULAR_OPEN, EASTERN).astimezone(UTC)
        close_dt = datetime.combine(day, close_time, EASTERN).astimezone(UTC)
        return Session(day, open_dt, close_dt)

    def is_open(self, when: datetime) -> bool:
        """True while a regular session is in progress at ``when`` (aware datetime)."""
        session = self.session(when.astimezone(EASTERN).date())
        return session is not None and session.open <= when < session.close

    def session_close(self, when: datetime) -> datetime | None:
        """Close of the session in progress at ``when``, or None if the market is closed then."""
        session = self.session(when.astimezone(EASTERN).date())
        if session is not None and session.open <= when < session.close:
            return session.close
        return None

    def next_open(self, when: datetime) -> datetime:
        """Start of the next session beginning after ``when`` (the current one if open now? no: the next)."""
        day = when.astimezone(EASTERN).date()
        for offset in range(0, 15):
            session = self.session(day + timedelta(days=offset))
            if session is not None and session.open > when:
                return session.open
        raise RuntimeError("no NYSE session within 15 days")  # cannot happen with the rules above

    def open_through(self, start: datetime, duration: timedelta) -> bool:
        """True if the market is open now and stays open for ``duration`` (one session)."""
        close = self.session_close(start)
        return close is not None and start + duration <= close


NYSE = ExchangeCalendar()
