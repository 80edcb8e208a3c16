"""Contract universe: stocks with stable conIds and generated option chains.

Option expiries are generated relative to today so the chain never goes stale. Far expiries get a
coarser and wider strike grid than near ones, so the union returned by reqSecDefOptParams contains
strikes that do not exist for the nearest expiry - exactly the trap real chains set for clients that
skip confirming a pair with reqContractDetails.
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

STOCKS: dict[str, tuple[int, str, float, str]] = {
    # symbol: (conId, primaryExchange, initial price, long name)
    "SPY": (756733, "ARCA", 560.0, "SPDR S&P 500 ETF TRUST"),
    "QQQ": (320227571, "NASDAQ", 480.0, "INVESCO QQQ TRUST SERIES 1"),
    "IWM": (9579970, "ARCA", 210.0, "ISHARES RUSSELL 2000 ETF"),
}

OPT_EXCHANGES = "SMART,AMEX,BATS,BOX,CBOE,CBOE2,EDGX,EMERALD,GEMINI,ISE,MERCURY,MIAX,NASDAQOM,PHLX,PSE"
STK_EXCHANGES = "SMART,AMEX,NYSE,CBOE,PHLX,ISE,CHX,ARCA,NASDAQ,DRCTEDGE,BEX,BATS,EDGEA,IEX,PEARL"
ORDER_TYPES = (
    "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AON,AVGCOST,BASKET,DAY,DEACT,GTC,LIT,LMT,MIT,MKT,MOC,REL,STP,"
    "STPLMT,TRAIL,WHATIF"
)
EASTERN = ZoneInfo("America/New_York")
TRADING_HOURS_RTH = "0930-1600"
TRADING_HOURS_EXT = "0400-2000"


def _crc(text: str) -> int:
    return zlib.crc32(text.encode())


@dataclass(frozen=True)
class Contract:
    """One tradable instrument as the simulator knows it."""

    conId: int
    symbol: str
    secType: str  # STK or OPT
    primaryExchange: str
    expiry: str = ""  # YYYYMMDD for options
    strike: float = 0.0
    right: str = ""  # C or P
    longName: str = ""
    underConId: int = 0

    @property
    def multiplier(self) -> int:
        return 100 if self.secType == "OPT" else 1

    @property
    def localSymbol(self) -> str:
        if self.secType != "OPT":
            return self.symbol
        return f"{self.symbol:<6}{self.expiry[2:]}{self.right}{round(self.strike * 1000):08d}"

    @property
    def key(self) -> str:
        """Human-readable key used by market data (options keyed by their local symbol)."""
        return self.symbol if self.secType == "STK" else self.localSymbol

    def c12(self, exchange: str = "SMART") -> list[object]:
        """The 12 contract fields in the order most server messages echo them."""
        return [
            self.conId,
            self.symbol,
            self.secType,
            self.expiry,
            self.strike if self.secType == "OPT" else 0,
            self.right,
            self.multiplier if self.secType == "OPT" else "",
            exchange,
            self.primaryExchange if self.secType == "STK" else "",
            "USD",
            self.localSymbol,
            self.symbol,
        ]


@dataclass
class Chain:
    """All option contracts of one underlying, grouped by expiry."""

    underlying: Contract
    by_expiry: dict[str, list[float]] = field(default_factory=dict)

    def all_strikes(self) -> list[float]:
        return sorted({s for strikes in self.by_expiry.values() for s in strikes})


def initial_price(symbol: str) -> float:
    if symbol in STOCKS:
        return STOCKS[symbol][2]
    return float(20 + _crc(symbol + ":px") % 480)


def _third_friday(year: int, month: int) -> dt.date:
    d = dt.date(year, month, 15)
    return d + dt.timedelta(days=(4 - d.weekday()) % 7)


def generate_expiries(symbol: str, today: dt.date) -> list[dt.date]:
    """SPY: every weekday for three weeks; others: Fridays for four weeks; plus two monthlies beyond."""
    out: set[dt.date] = set()
    if symbol == "SPY":
        d = today
        while d <= today + dt.timedelta(days=21):
            if d.weekday() < 5:
                out.add(d)
            d += dt.timedelta(days=1)
    else:
        d = today + dt.timedelta(days=(4 - today.weekday()) % 7)
        for _ in range(4):
            out.add(d)
            d += dt.timedelta(days=7)
    horizon = max(out)
    y, m = today.year, today.month
    monthlies = 0
    while monthlies < 2:
        tf = _third_friday(y, m)
        if tf > horizon:
            out.add(tf)
            monthlies += 1
        m += 1
        if m > 12:
            y, m = y + 1, 1
    return sorted(out)


def _strike_grid(spot: float, days_out: int) -> list[float]:
    """Near expiries: fine grid close to spot; far ones: coarse grid wider out."""
    base = 1.0 if spot >= 100 else 0.5
    if days_out <= 7:
        step, width = base, 0.06
    elif days_out <= 30:
        step, width = base * 2.5, 0.12
    else:
        step, width = base * 5, 0.20
    lo = (spot * (1 - width)) // step * step
    hi = spot * (1 + width)
    strikes = []
    k = lo
    while k <= hi:
        if k > 0:
            strikes.append(round(k, 2))
        k += step
    return strikes


class ContractRegistry:
    """Lookup of stocks and options by conId / symbol / option key."""

    def __init__(self, symbols: list[str], today: dt.date | None = None) -> None:
        self.today = today or dt.date.today()
        self.stocks: dict[str, Contract] = {}
        self.by_conid: dict[int, Contract] = {}
        self.chains: dict[str, Chain] = {}
        self.options: dict[tuple[str, str, float, str], Contract] = {}
        for sym in symbols:
            self.add_stock(sym)

    def add_stock(self, symbol: str) -> Contract:
        if symbol in STOCKS:
            conid, prim, _, name = STOCKS[symbol]
        else:
            conid = 100_000_000 + _crc(symbol) % 800_000_000
            prim = "NASDAQ" if _crc(symbol) % 2 else "NYSE"
            name = f"{symbol} SIMULATED INC"
        c = Contract(conId=conid, symbol=symbol, secType="STK", primaryExchange=prim, longName=name)
        self.stocks[symbol] = c
        self.by_conid[conid] = c
        self._build_chain(c)
        return c

    def _build_chain(self, stock: Contract) -> None:
        spot = initial_price(stock.symbol)
        chain = Chain(stock)
        for exp in generate_expiries(stock.symbol, self.today):
            ymd = exp.strftime("%Y%m%d")
            strikes = _strike_grid(spot, (exp - self.today).days)
            chain.by_expiry[ymd] = strikes
            for k in strikes:
                for right in ("C", "P"):
                    conid = 400_000_000 + _crc(f"{stock.symbol}|{ymd}|{k:.2f}|{right}") % 1_000_000_000
                    while conid in self.by_conid:
                        conid += 1
                    oc = Contract(
                        conId=conid,
                        symbol=stock.symbol,
                        secType="OPT",
                        primaryExchange="",
                        expiry=ymd,
                        strike=k,
                        right=right,
                        longName=stock.longName,
                        underConId=stock.conId,
                    )
                    self.options[(stock.symbol, ymd, k, right)] = oc
                    self.by_conid[conid] = oc
        self.chains[stock.symbol] = chain

    def match(
        self,
        conid: int,
        symbol: str,
        sec_type: str,
        expiry: str,
        strike: float,
        right: str,
        limit: int = 500,
    ) -> list[Contract]:
        """Resolve a (possibly partial) contract request like reqContractDetails does."""
        if conid and conid in self.by_conid:
            c = self.by_conid[conid]
            if not sec_type or sec_type == c.secType:
                return [c]
            return []
        symbol = symbol.upper()
        sec_type = (sec_type or "STK").upper()
        if sec_type == "STK":
            return [self.stocks[symbol]] if symbol in self.stocks else []
        if sec_type not in ("OPT", "FOP") or symbol not in self.chains:
            return []
        right = right.upper()[:1] if right else ""
        out: list[Contract] = []
        for (sym, exp, k, r), c in self.options.items():
            if sym != symbol:
                continue
            if expiry and not exp.startswith(expiry):
                continue
            if strike and abs(k - strike) > 1e-6:
                continue
            if right and r != right:
                continue
            out.append(c)
            if len(out) >= limit:
                break
        return out


def exchange_date(epoch: float) -> dt.date:
    """The exchange's calendar date at ``epoch``: the day its published hours start from. (The
    host's own date runs a day ahead every evening from 19:00 or 20:00 New York time on a UTC host;
    hours starting there would leave the exchange's current day uncovered.)"""
    return dt.datetime.fromtimestamp(epoch, EASTERN).date()


def trading_hours(today: dt.date, rth: bool, calendar: Any = None) -> str:
    """tradingHours/liquidHours for the next week in TWS's 20250101:0930-20250101:1600 format.

    Clients (gatewatch's own exporter among them) take these as the authority on when the market is
    open, as IBKR advises, so they must agree with what the simulator does: with no calendar (the
    ``open`` market that trades around the clock) every day is one 24-hour session; with the NYSE
    calendar, holidays are CLOSED and early closes end at 13:00.
    """
    parts = []
    for i in range(7):
        d = today + dt.timedelta(days=i)
        ymd = d.strftime("%Y%m%d")
        if calendar is None:
            nxt = (d + dt.timedelta(days=1)).strftime("%Y%m%d")
            parts.append(f"{ymd}:0000-{nxt}:0000")
            continue
        session = calendar.session(d)
        if session is None:
            parts.append(f"{ymd}:CLOSED")
            continue
        close = session.close.astimezone(EASTERN).strftime("%H%M")
        a, b = (TRADING_HOURS_RTH if rth else TRADING_HOURS_EXT).split("-")
        parts.append(f"{ymd}:{a}-{ymd}:{close if rth else b}")
    return ";".join(parts)


def contract_details_fields(req_id: int, c: Contract, today: dt.date, calendar: Any = None) -> list[object]:
    """contractDetails (msg 10) at server version >= 164: no version field."""
    is_opt = c.secType == "OPT"
    return [
        10,
        req_id,
        c.symbol,
        c.secType,
        (c.expiry + " 16:00 US/Eastern") if is_opt else "",
        c.strike if is_opt else 0,
        c.right,
        "SMART",
        "USD",
        c.localSymbol,
        c.symbol,  # marketName
        c.symbol,  # tradingClass
        c.conId,
        0.01,  # minTick
        c.multiplier if is_opt else "",
        ORDER_TYPES,
        OPT_EXCHANGES if is_opt else STK_EXCHANGES,
        1,  # priceMagnifier
        c.underConId,
        c.longName,
        c.primaryExchange,
        c.expiry[:6] if is_opt else "",
        "Funds" if not is_opt else "",
        "Equity Fund" if not is_opt else "",
        "Exchange Traded Fund" if not is_opt else "",
        "US/Eastern",
        trading_hours(today, rth=False, calendar=calendar),
        trading_hours(today, rth=True, calendar=calendar),
        "",  # evRule
        "",  # evMultiplier
        0,  # numSecIds
        1,  # aggGroup
        c.symbol if is_opt else "",
        "STK" if is_opt else "",
        "32,32" if is_opt else "26,26",
        c.expiry if is_opt else "",
        "ETF" if not is_opt else "",
        1,  # minSize
        1,  # sizeIncrement
        1,  # suggestedSizeIncrement
    ]
