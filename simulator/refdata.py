"""One-shot reference-data requests: managed accounts, symbol search, market rules, head timestamp,
historical ticks, news providers, scanner parameters, user info.

Each answers once, in the layout ib_async 2.1.0's decoder reads at server version 178 (decoder.py:
symbolSamples l.695, marketRule l.767, historicalTicks* l.778-836, newsProviders l.749, wrap table
ids 19/88/107); IBKR's ibapi decoder reads the same fields.
"""

from __future__ import annotations

import datetime as dt
import random
import zlib
from typing import Any

from simulator.contracts import Contract
from simulator.history import HistoryRequestError, parse_end_datetime
from simulator.wire import Fields

#: Market rule id -> (low edge, increment) pairs; the ids are what contractDetails' marketRuleIds
#: carry (26: US stocks and ETFs; 32: options of the penny program, which SPY, QQQ and IWM are in:
#: a cent at every price). Orders off this grid get error 110 (broker.MIN_TICK).
MARKET_RULES: dict[int, list[tuple[float, float]]] = {26: [(0.0, 0.01)], 32: [(0.0, 0.01)]}
NEWS_PROVIDERS = [
    ("BRFG", "Briefing.com General Market Columns"),
    ("BRFUPDN", "Briefing.com Analyst Actions"),
    ("DJNL", "Dow Jones Newsletters"),
]
WHITE_BRANDING_ID = ""  # an individual account has none
SCANNER_PARAMETERS_XML = (
    '<?xml version="1.0" encoding="UTF-8"?><ScanParameterResponse><InstrumentList>'
    "<Instrument><name>US Stocks</name><type>STK</type></Instrument></InstrumentList>"
    "<ScanTypeList><ScanType><displayName>Most Active</displayName><scanCode>MOST_ACTIVE</scanCode>"
    "</ScanType></ScanTypeList></ScanParameterResponse>"
)
MAX_HISTORICAL_TICKS = 1000
HEAD_TIMESTAMP = {"SPY": "19930129 14:30:00", "QQQ": "19990310 14:30:00", "IWM": "20000526 13:30:00"}


def managed_accounts(account: str) -> list[Any]:
    return [15, 1, account]


def matching_symbols(req_id: int, pattern: str, stocks: list[Contract]) -> list[Any]:
    """symbolSamples (79): stocks whose symbol or name starts with / contains the pattern."""
    p = pattern.strip().upper()
    hits = [c for c in stocks if p and (c.symbol.startswith(p) or p in c.longName.upper())]
    msg: list[Any] = [79, req_id, len(hits)]
    for c in hits:
        msg += [c.conId, c.symbol, "STK", c.primaryExchange, "USD", 1, "OPT", c.longName, ""]
    return msg


def market_rule(rule_id: int) -> list[Any] | None:
    rule = MARKET_RULES.get(rule_id)
    if rule is None:
        return None
    msg: list[Any] = [93, rule_id, len(rule)]
    for low, inc in rule:
        msg += [low, inc]
    return msg


def head_timestamp(req_id: int, c: Contract, format_date: int) -> list[Any]:
    text = HEAD_TIMESTAMP.get(c.symbol, "20100104 14:30:00")
    if c.secType == "OPT":  # an option trades from about its listing, six weeks before expiry
        exp = dt.datetime.strptime(c.expiry, "%Y%m%d").replace(tzinfo=dt.UTC)
        text = (exp - dt.timedelta(days=42)).strftime("%Y%m%d 13:30:00")
    if format_date == 2:
        text = str(int(dt.datetime.strptime(text, "%Y%m%d %H:%M:%S").replace(tzinfo=dt.UTC).timestamp()))
    return [88, req_id, text]


def historical_ticks(
    req_id: int, c: Contract, f: Fields, *, now: float, mid: float, spread: float, seed: int
) -> list[Any]:
    """reqHistoricalTicks ``[96, reqId, C12, includeExpired, start, end, n, what, useRth, ignoreSize,
    misc]``: TRADES -> 98, BID_ASK -> 97, MIDPOINT -> 96, each ending with done=1.

    Raises HistoryRequestError (321) for a bad date or what-to-show, as a Gateway refuses them.
    """
    start_text, end_text, n, what = f.s(15), f.s(16), f.i(17), f.s(18).upper()
    if what not in ("TRADES", "BID_ASK", "MIDPOINT"):
        raise HistoryRequestError(f"Error validating request.-'cB' : cause - Invalid what to show: {what}")
    if bool(start_text.strip()) == bool(end_text.strip()):
        raise HistoryRequestError(
            "Error validating request.-'cB' : cause - Exactly one of start and end date must be given"
        )
    start, end = parse_end_datetime(start_text), parse_end_datetime(end_text)
    n = max(1, min(n or 1, MAX_HISTORICAL_TICKS))
    anchor = min(end if end is not None else now, now)
    rng = random.Random(zlib.crc32(f"{seed}|{c.key}|{what}|{int(anchor)}".encode()))
    times = sorted(int(anchor) - rng.randint(0, 3600) for _ in range(n))
    if start is not None:
        times = sorted(min(int(start) + rng.randint(0, 3600), int(now)) for _ in range(n))
    msg_id = {"MIDPOINT": 96, "BID_ASK": 97, "TRADES": 98}[what]
    msg: list[Any] = [msg_id, req_id, len(times)]
    for t in times:
        px = round(mid * (1 + rng.gauss(0, 0.0005)), 2)
        if what == "MIDPOINT":
            msg += [t, 0, px, 0]
        elif what == "BID_ASK":
            msg += [
                t,
                0,
                round(px - spread / 2, 2),
                round(px + spread / 2, 2),
                100 * rng.randint(1, 30),
                100 * rng.randint(1, 30),
            ]
        else:
            msg += [t, 0, px, 100 * rng.randint(1, 5), "ARCA", ""]
    msg.append(1)  # done
    return msg


def news_providers() -> list[Any]:
    msg: list[Any] = [85, len(NEWS_PROVIDERS)]
    for code, name in NEWS_PROVIDERS:
        msg += [code, name]
    return msg


def scanner_parameters() -> list[Any]:
    return [19, 1, SCANNER_PARAMETERS_XML]


def user_info(req_id: int) -> list[Any]:
    return [107, req_id, WHITE_BRANDING_ID]
