"""Historical bars consistent with the live walk (the last bar closes at the current price).

Bars are generated backwards from the current price with an RNG seeded by the request's
parameters, so repeating a request returns the same bars while the market has not moved.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import re
import zlib
from typing import Any
from zoneinfo import ZoneInfo

ET = ZoneInfo("US/Eastern")
MAX_BARS = 5000

#: The bar sizes a Gateway accepts, exactly these strings (IBKR's historical bars documentation;
#: ../shared/reference/ibkr-facts.md "Pacing and limits"): "7 mins", "1 hours", "45 secs" are refused.
LEGAL_BAR_SIZES: dict[str, int] = {
    "1 secs": 1, "5 secs": 5, "10 secs": 10, "15 secs": 15, "30 secs": 30,
    "1 min": 60, "2 mins": 120, "3 mins": 180, "5 mins": 300, "10 mins": 600, "15 mins": 900,
    "20 mins": 1200, "30 mins": 1800,
    "1 hour": 3600, "2 hours": 7200, "3 hours": 10800, "4 hours": 14400, "8 hours": 28800,
    "1 day": 86400, "1 week": 7 * 86400, "1 month": 30 * 86400,
}  # fmt: skip
#: whatToShow values of reqHistoricalData (IBKR's "Historical Bar whatToShow" table).
LEGAL_WHAT_TO_SHOW = frozenset(
    "TRADES MIDPOINT BID ASK BID_ASK ADJUSTED_LAST HISTORICAL_VOLATILITY OPTION_IMPLIED_VOLATILITY "  # noqa: SIM905
    "REBATE_RATE FEE_RATE YIELD_BID YIELD_ASK YIELD_BID_ASK YIELD_LAST SCHEDULE AGGTRADES".split()
)


class HistoryRequestError(ValueError):
    """The request's duration or bar size cannot be parsed (TWS answers error 321)."""


def parse_bar_size(text: str) -> int:
    step = LEGAL_BAR_SIZES.get(text.strip())
    if step is None:
        raise HistoryRequestError(f"Error validating request.-'bP' : cause - Invalid bar size: {text}")
    return step


def parse_history_duration(text: str) -> tuple[int, str]:
    """IB's historical-data duration (``"1 D"``, ``"2 W"``: amount and unit S/D/W/M/Y), not the
    ``"90s"``-style durations of gatewatch's files (gatewatch.durations)."""
    m = re.fullmatch(r"\s*(\d+)\s+([SDWMY])\s*", text.upper())
    if not m:
        raise HistoryRequestError(
            f"Error validating request.-'bP' : cause - Historical data query duration invalid: {text}"
        )
    return int(m.group(1)), m.group(2)


def _trading_day(d: dt.date, all_days: bool, calendar: Any) -> bool:
    if all_days:
        return True
    if calendar is not None:
        return calendar.session(d) is not None
    return d.weekday() < 5


def _in_session(t: dt.datetime, use_rth: bool, all_days: bool, calendar: Any = None) -> bool:
    """Is the bar starting at ET time ``t`` inside the session the request asked for?

    With the exchange calendar, holidays have no bars and an early close ends the regular session at
    13:00 and the extended one at 17:00, as the contract's trading hours say.
    """
    if not _trading_day(t.date(), all_days, calendar):
        return False
    minutes = t.hour * 60 + t.minute
    close_rth, close_ext = 16 * 60, 20 * 60
    if calendar is not None:
        session = calendar.session(t.date())
        if session.early_close:
            close_rth, close_ext = 13 * 60, 17 * 60
    if use_rth:
        return 9 * 60 + 30 <= minutes < close_rth
    if all_days:
        return True
    return 4 * 60 <= minutes < close_ext


def generate_bars(
    *,
    symbol: str,
    seed: int,
    last_price: float,
    now: float,
    end: float | None,
    duration: str,
    bar_size: str,
    use_rth: bool,
    what: str,
    format_date: int,
    all_days: bool,
    calendar: Any = None,
) -> list[tuple[str, float, float, float, float, float, float, int]]:
    """Return ``(date, open, high, low, close, volume, wap, count)`` tuples, oldest first."""
    step = parse_bar_size(bar_size)
    amount, unit = parse_history_duration(duration)
    end_ts = min(end or now, now)
    daily = step >= 86400
    if unit == "S":
        span_days = None
        start_ts = end_ts - amount
    else:
        span_days = amount * {"D": 1, "W": 5, "M": 21, "Y": 252}[unit]
        start_ts = None

    times: list[float] = []
    if daily:
        d = dt.datetime.fromtimestamp(end_ts, ET).date()
        count_days = span_days if span_days is not None else max(1, amount // 86400)
        while len(times) < min(count_days, MAX_BARS):
            if _trading_day(d, all_days, calendar):
                times.append(dt.datetime(d.year, d.month, d.day, tzinfo=ET).timestamp())
            d -= dt.timedelta(days=1)
    else:
        t = math.floor(end_ts / step) * step
        days_seen: set[dt.date] = set()
        limit_days = span_days
        while len(times) < MAX_BARS:
            if start_ts is not None and t < start_ts:
                break
            et = dt.datetime.fromtimestamp(t, ET)
            if _in_session(et, use_rth, all_days, calendar):
                if limit_days is not None and et.date() not in days_seen:
                    if len(days_seen) >= limit_days:
                        break
                    days_seen.add(et.date())
                times.append(t)
            t -= step
            if end_ts - t > 400 * 86400:
                break
    times.reverse()
    if not times:
        return []  # the caller answers 162 "HMDS query returned no data", as a Gateway does

    rng = random.Random(
        zlib.crc32(f"{seed}|{symbol}|{bar_size}|{what}|{use_rth}".encode()) + int(end_ts // 60)
    )
    sigma = 0.0015 * math.sqrt(step / 300)
    closes = [last_price]
    for _ in range(len(times) - 1):
        closes.append(closes[-1] * math.exp(-rng.gauss(0, sigma)))
    closes.reverse()
    bars = []
    prev = closes[0] * math.exp(rng.gauss(0, sigma / 2))
    for ts, close in zip(times, closes, strict=True):
        open_ = prev
        high = max(open_, close) * (1 + abs(rng.gauss(0, sigma / 3)))
        low = min(open_, close) * (1 - abs(rng.gauss(0, sigma / 3)))
        vol = float(rng.randint(50, 5000) * (10 if what == "TRADES" else 0) or -1)
        wap = (open_ + high + low + close) / 4
        count = rng.randint(10, 900) if what == "TRADES" else -1
        bars.append(
            (
                format_bar_date(ts, daily, format_date),
                round(open_, 2),
                round(high, 2),
                round(low, 2),
                round(close, 2),
                vol,
                round(wap, 4),
                count,
            )
        )
        prev = close
    return bars


def format_bar_date(ts: float, daily: bool, format_date: int) -> str:
    et = dt.datetime.fromtimestamp(ts, ET)
    if daily:
        return et.strftime("%Y%m%d")
    if format_date == 2:
        return str(int(ts))
    return et.strftime("%Y%m%d %H:%M:%S") + " US/Eastern"


def format_range_date(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, ET).strftime("%Y%m%d %H:%M:%S") + " US/Eastern"


def parse_end_datetime(text: str) -> float | None:
    """Parse reqHistoricalData's endDateTime.

    '' means now; 'yyyymmdd hh:mm:ss[ tz]' is exchange time unless a zone is given;
    'yyyymmdd-hh:mm:ss' is UTC.
    """
    text = text.strip()
    if not text:
        return None
    m = re.fullmatch(r"(\d{8})[ -](\d{2}:\d{2}:\d{2})(?:\s+(\S+))?", text)
    if not m:
        raise HistoryRequestError(f"Error validating request.-'bP' : cause - Invalid end date: {text}")
    base = dt.datetime.strptime(m.group(1) + " " + m.group(2), "%Y%m%d %H:%M:%S")
    tzname = m.group(3) or ("UTC" if "-" in text[:9] else "US/Eastern")
    try:
        tz = ZoneInfo(tzname)
    except Exception as exc:
        raise HistoryRequestError(
            f"Error validating request.-'bP' : cause - Invalid time zone: {tzname}"
        ) from exc
    return base.replace(tzinfo=tz).timestamp()
