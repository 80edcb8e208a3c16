"""Seeded price model: a random walk per underlying and Black-Scholes option quotes from it.

The walk only advances when ``step()`` is called by the server's tick loop, so a frozen symbol
(or a closed market) simply skips its step and keeps its last quote.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import zlib
from dataclasses import dataclass

from simulator.contracts import Contract, initial_price

OPT_VOL = 0.20
RATE = 0.04
STEP_SIGMA = 0.0004  # relative move per step


@dataclass
class Quote:
    """Top of book plus last trade for one underlying."""

    bid: float
    ask: float
    last: float
    bid_size: int
    ask_size: int
    last_size: int
    volume: int
    last_time: float  # epoch seconds of the last trade
    open: float = 0.0  # the session's first trade, high and low (ticks 14, 6, 7)
    high: float = 0.0
    low: float = 0.0


def round_tick(price: float, tick: float = 0.01) -> float:
    return round(round(price / tick) * tick, 2)


def _norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def black_scholes(spot: float, strike: float, years: float, right: str, vol: float = OPT_VOL) -> float:
    years = max(years, 1.0 / (365 * 24))
    sq = vol * math.sqrt(years)
    d1 = (math.log(spot / strike) + (RATE + 0.5 * vol * vol) * years) / sq
    d2 = d1 - sq
    disc = math.exp(-RATE * years)
    if right == "C":
        return spot * _norm_cdf(d1) - strike * disc * _norm_cdf(d2)
    return strike * disc * _norm_cdf(-d2) - spot * _norm_cdf(-d1)


class Market:
    """Quotes for every configured underlying, deterministic for a given seed."""

    def __init__(self, symbols: list[str], seed: int, now: float) -> None:
        self.seed = seed
        self.quotes: dict[str, Quote] = {}
        self._rng: dict[str, random.Random] = {}
        for sym in symbols:
            self.add_symbol(sym, now)

    def add_symbol(self, sym: str, now: float) -> None:
        rng = random.Random(self.seed * 1_000_003 + zlib.crc32(sym.encode()))
        self._rng[sym] = rng
        mid = initial_price(sym) * (1 + rng.uniform(-0.01, 0.01))
        spread = 0.01 if mid < 300 else 0.02
        bid = round_tick(mid - spread / 2)
        self.quotes[sym] = Quote(
            bid=bid,
            ask=round_tick(bid + spread),
            last=round_tick(mid),
            bid_size=rng.randint(1, 30) * 100,
            ask_size=rng.randint(1, 30) * 100,
            last_size=100,
            volume=rng.randint(100_000, 900_000),
            last_time=float(int(now)),
        )
        day = random.Random(zlib.crc32(f"{self.seed}|{sym}|session".encode()))  # not the walk's RNG
        q = self.quotes[sym]
        q.open = round_tick(mid * (1 + day.uniform(-0.004, 0.004)))
        q.high = round_tick(max(q.open, q.last) * (1 + day.uniform(0, 0.003)))
        q.low = round_tick(min(q.open, q.last) * (1 - day.uniform(0, 0.003)))

    def step(self, sym: str, now: float) -> Quote:
        """Advance one symbol's walk by one tick."""
        q = self.quotes[sym]
        rng = self._rng[sym]
        mid = (q.bid + q.ask) / 2
        mid *= math.exp(rng.gauss(0.0, STEP_SIGMA))
        spread = 0.01 * rng.choice((1, 1, 1, 2, 3))
        q.bid = round_tick(mid - spread / 2)
        q.ask = round_tick(q.bid + spread)
        if q.ask <= q.bid:
            q.ask = round_tick(q.bid + 0.01)
        q.bid_size = rng.randint(1, 30) * 100
        q.ask_size = rng.randint(1, 30) * 100
        if rng.random() < 0.6:
            q.last = rng.choice((q.bid, q.ask))
            q.last_size = rng.randint(1, 5) * 100
            q.volume += q.last_size // 100
            q.last_time = float(int(now))
            q.high, q.low = max(q.high, q.last), min(q.low, q.last)
        return q

    def jump(self, sym: str, pct: float) -> Quote:
        """Gap one symbol's book by ``pct`` percent (news, an opening gap); the walk goes on from there."""
        q = self.quotes[sym]
        factor = 1 + pct / 100
        spread = max(0.01, round_tick(q.ask - q.bid))
        q.bid = round_tick(q.bid * factor)
        q.ask = round_tick(q.bid + spread)
        q.last = round_tick(q.last * factor)
        return q

    def option_quote(self, c: Contract, now: float) -> Quote:
        """Price an option off the underlying's current mid; min price 0.01, IB-like tick sizes."""
        uq = self.quotes[c.symbol]
        spot = (uq.bid + uq.ask) / 2
        exp = dt.datetime.strptime(c.expiry, "%Y%m%d").replace(hour=21, tzinfo=dt.UTC).timestamp()
        years = max(exp - now, 60.0) / (365 * 86400)
        theo = black_scholes(spot, c.strike, years, c.right)
        tick = 0.01 if theo < 3 else 0.05
        half = max(tick, round_tick(theo * 0.02, tick))
        bid = max(0.0, round_tick(theo - half, tick))
        ask = max(0.01, round_tick(theo + half, tick))
        if ask <= bid:
            ask = round(bid + tick, 2)
        last = max(0.01, round_tick(theo, tick))
        seed = zlib.crc32(c.localSymbol.encode())
        return Quote(
            bid=bid,
            ask=ask,
            last=last,
            bid_size=1 + seed % 50,
            ask_size=1 + (seed >> 8) % 50,
            last_size=1,
            volume=seed % 5000,
            last_time=uq.last_time,
        )

    def greeks(self, c: Contract, now: float) -> tuple[float, ...]:
        """tickOptionComputation's values for an option: (impliedVol, delta, optPrice, pvDividend,
        gamma, vega, theta, undPrice)."""
        uq = self.quotes[c.symbol]
        spot = (uq.bid + uq.ask) / 2
        exp = dt.datetime.strptime(c.expiry, "%Y%m%d").replace(hour=21, tzinfo=dt.UTC).timestamp()
        years = max(exp - now, 60.0) / (365 * 86400)
        g = option_greeks(spot, c.strike, years, c.right)
        price = black_scholes(spot, c.strike, years, c.right)
        return (OPT_VOL, round(g["delta"], 4), round(price, 4), 0.0, round(g["gamma"], 5), round(g["vega"], 4),
                round(g["theta"], 4), round(spot, 2))

    def quote_for(self, c: Contract, now: float) -> Quote:
        if c.secType == "OPT":
            return self.option_quote(c, now)
        return self.quotes[c.symbol]

    def mark(self, c: Contract, now: float) -> float:
        q = self.quote_for(c, now)
        if q.bid > 0 and q.ask > 0:
            return round((q.bid + q.ask) / 2, 4)
        return q.last


def option_greeks(spot: float, strike: float, years: float, right: str, vol: float = OPT_VOL) -> dict[str, float]:
    """Black-Scholes delta, gamma, vega (per vol point) and theta (per day) at the model's vol."""
    years = max(years, 1.0 / (365 * 24))
    sq = vol * math.sqrt(years)
    d1 = (math.log(spot / strike) + (RATE + 0.5 * vol * vol) * years) / sq
    d2 = d1 - sq
    pdf = math.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi)
    disc = math.exp(-RATE * years)
    delta = _norm_cdf(d1) if right == "C" else _norm_cdf(d1) - 1
    gamma = pdf / (spot * sq)
    vega = spot * pdf * math.sqrt(years) / 100
    carry = RATE * strike * disc * (_norm_cdf(d2) if right == "C" else -_norm_cdf(-d2))
    theta = (-spot * pdf * vol / (2 * math.sqrt(years)) - carry) / 365
    return {"delta": delta, "gamma": gamma, "vega": vega, "theta": theta}
