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
from zoneinfo import ZoneInfo

ET = ZoneInfo("US/Eastern")
MAX_BARS = 5000

_BAR_UNITS = {
    "sec": 1,
    "secs": 1,
    "min": 60,
    "mins": 60,
    "hour": 3600,
    "hours": 3600,
    "day": 86400,
    "days": 86400,
    "week": 7 * 86400,
    "weeks": 7 * 86400,
    "month": 30 * 86400,
    "months": 30 * 86400,
}


class HistoryRequestError(ValueError):
    """The request's duration or bar size cannot be parsed (TWS answers error 321)."""


def parse_bar_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s+([A-Za-z]+)\s*", text)
    if not m or m.group(2).lower() not in _BAR_UNITS:
        raise HistoryRequestError(f"Error validating request.-'bP' : cause - Invalid bar size: {text}")
    return int(m.group(1)) * _BAR_UNITS[m.group(2).lower()]


def parse_duration(text: str) -> tuple[int, str]:
    m = re.fullmatch(r"\s*(\d+)\s+([SDWMY])\s*", text.upper())
    if not m:
        raise HistoryRequestError(
            f"Error validating request.-'bP' : cause - Historical data query duration invalid: {text}"
        )
    return int(m.group(1)), m.group(2)


def _in_session(t: dt.datetime, use_rth: bool, all_days: bool) -> bool:
    """Is the bar starting at ET time ``t`` inside the session the request asked for?"""
    if not all_days and t.weekday() >= 5:
        return False
    minutes = t.hour * 60 + t.minute
    if use_rth:
        return 9 * 60 + 30 <= minutes < 16 * 60
    if all_days:
        return True
    return 4 * 60 <= minutes < 20 * 60


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
) -> list[tuple[str, float, float, float, float, float, float, int]]:
    """Return ``(date, open, high, low, close, volume, wap, count)`` tuples, oldest first."""
    step = parse_bar_size(bar_size)
    amount, unit = parse_duration(duration)
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
            if all_days or d.weekday() < 5:
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
            if _in_session(et, use_rth, all_days):
                if limit_days is not None and et.date() not in days_seen:
                    if len(days_seen) >= limit_days:
                        break
                    days_seen.add(et.date())
                times.append(t)
            t -= step
            if end_ts - t > 400 * 86400:
                break
    times.reverse()

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
