"""The NYSE calendar rules against exchange_calendars' XNYS, day by day, and its edge cases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import exchange_calendars as xcals
import pandas as pd
import pytest

from gatewatch.market_calendar import EASTERN, NYSE


@pytest.fixture(scope="module")
def xnys() -> xcals.ExchangeCalendar:
    return xcals.get_calendar("XNYS", start="2020-01-01", end="2030-12-31")


def test_sessions_match_exchange_calendars(xnys: xcals.ExchangeCalendar) -> None:
    sessions = {ts.date() for ts in xnys.sessions}
    early = {ts.date() for ts in xnys.early_closes}
    day, mismatches = date(2020, 1, 1), []
    while day <= date(2030, 12, 31):
        session = NYSE.session(day)
        if (session is not None) != (day in sessions):
            mismatches.append(("trading day", day))
        elif session is not None:
            if session.early_close != (day in early):
                mismatches.append(("early close", day))
            stamp = pd.Timestamp(day)
            if (session.open, session.close) != (
                xnys.session_open(stamp).to_pydatetime(),
                xnys.session_close(stamp).to_pydatetime(),
            ):
                mismatches.append(("hours", day))
        day += timedelta(days=1)
    assert mismatches == []


def _et(y: int, m: int, d: int, hh: int, mm: int) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=EASTERN)


@pytest.mark.parametrize(
    ("when", "is_open"),
    [
        (_et(2026, 11, 25, 9, 29), False),  # before the open
        (_et(2026, 11, 25, 9, 30), True),
        (_et(2026, 11, 25, 15, 59), True),
        (_et(2026, 11, 25, 16, 0), False),  # the close is exclusive
        (_et(2026, 11, 26, 12, 0), False),  # Thanksgiving
        (_et(2026, 11, 27, 12, 59), True),  # day after: early close at 13:00
        (_et(2026, 11, 27, 13, 0), False),
        (_et(2026, 11, 28, 12, 0), False),  # Saturday
        (_et(2026, 7, 3, 12, 0), False),  # Independence Day observed (July 4 is a Saturday)
    ],
)
def test_is_open(when: datetime, is_open: bool) -> None:
    assert NYSE.is_open(when.astimezone(UTC)) is is_open


def test_open_through_respects_early_close() -> None:
    noon_early = _et(2026, 11, 27, 11, 30)
    assert not NYSE.open_through(noon_early, timedelta(hours=2))
    assert NYSE.open_through(noon_early, timedelta(hours=1))
    assert NYSE.open_through(_et(2026, 11, 25, 10, 0), timedelta(hours=2))


def test_next_open_skips_holiday_and_weekend() -> None:
    assert NYSE.next_open(_et(2026, 11, 25, 17, 0)) == _et(2026, 11, 27, 9, 30)
    assert NYSE.next_open(_et(2026, 11, 27, 14, 0)) == _et(2026, 11, 30, 9, 30)
