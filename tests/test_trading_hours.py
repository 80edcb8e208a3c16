"""Market hours from a contract's liquidHours, with the exchange calendar as the fallback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from gatewatch.trading_hours import MarketHours, parse_hours

ET = ZoneInfo("America/New_York")
WEEK = "20261125:0930-20261125:1600;20261126:CLOSED;20261127:0930-20261127:1300"


def et(day: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 11, day, hh, mm, tzinfo=ET).astimezone(UTC)


def test_parse_current_format() -> None:
    covered, intervals = parse_hours(WEEK, "US/Eastern")
    assert len(covered) == 3
    assert intervals == [(et(25, 9, 30), et(25, 16)), (et(27, 9, 30), et(27, 13))]


def test_parse_legacy_format_and_garbage() -> None:
    covered, intervals = parse_hours("20261125:0930-1200,1300-1600;junk;20261126:CLOSED", "US/Eastern")
    assert len(covered) == 2
    assert intervals == [(et(25, 9, 30), et(25, 12)), (et(25, 13), et(25, 16))]


def test_contract_hours_win_where_they_cover_the_day() -> None:
    hours = MarketHours()
    # A contract that trades around the clock (the simulator's open market): open at 3 am.
    hours.update("20261125:0000-20261126:0000", "US/Eastern")
    assert hours.is_open(et(25, 3)) and hours.source(et(25, 3)) == "contract"
    # Days the contract does not cover fall back to the NYSE calendar (Friday 27th closes at 13:00).
    assert hours.source(et(27, 12)) == "calendar"
    assert hours.is_open(et(27, 12)) and not hours.is_open(et(27, 13, 30))


def test_closed_days_and_early_close_from_contract() -> None:
    hours = MarketHours()
    hours.update(WEEK, "US/Eastern")
    assert not hours.is_open(et(26, 11))  # CLOSED (Thanksgiving)
    assert hours.open_through(et(27, 10), timedelta(hours=2))
    assert not hours.open_through(et(27, 11, 30), timedelta(hours=2))


def test_without_contract_hours_the_calendar_decides() -> None:
    hours = MarketHours()
    hours.update("", "US/Eastern")  # nothing parseable: keep the calendar
    assert hours.source(et(25, 10)) == "calendar"
    assert hours.is_open(et(25, 10)) and not hours.is_open(et(25, 3))


def test_round_the_clock_sessions_are_one_session_across_midnight() -> None:
    """The simulator's open market publishes one 24-hour session per day; a 2-hour session starting
    at 23:00 crosses midnight and is still open throughout."""
    hours = MarketHours()
    hours.update("20261125:0000-20261126:0000;20261126:0000-20261127:0000", "US/Eastern")
    assert hours.known
    assert hours.open_through(et(25, 23), timedelta(hours=2))
    assert hours.session_close(et(25, 23)) == et(27, 0)
    assert not hours.open_through(et(26, 23), timedelta(hours=2))  # the 27th is not covered: ends at 00:00


def test_close_and_next_open_follow_the_contract_then_the_calendar() -> None:
    hours = MarketHours()
    hours.update(WEEK, "US/Eastern")
    assert hours.session_close(et(25, 10)) == et(25, 16)
    assert hours.session_close(et(25, 17)) is None
    assert hours.next_open(et(25, 17)) == et(27, 9, 30)  # Thanksgiving CLOSED in the contract hours
    assert not MarketHours().known
    assert MarketHours().next_open(et(27, 17)) == datetime(2026, 11, 30, 9, 30, tzinfo=ET).astimezone(UTC)
