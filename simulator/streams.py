"""Subscriptions that keep speaking after the request: PnL, PnL of one position, 5-second real-time
bars, tick-by-tick data and keepUpToDate historical bars.

A Gateway streams these until they are cancelled; the server's tick loop calls ``push_all`` and
each subscription sends what changed since its last message. Layouts as ib_async 2.1.0's decoder
reads them at 178 (wrap ids 50/94/95, tickByTick l.838, historicalDataUpdate l.496).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from simulator.broker import Broker
from simulator.contracts import Contract
from simulator.history import format_bar_date
from simulator.market import Market
from simulator.session import Session

RT_BAR_SECONDS = 5
TBT_TYPES = {"LAST": 1, "ALLLAST": 2, "BIDASK": 3, "MIDPOINT": 4}
PNL_EVERY = 1.0  # seconds between PnL messages when something changed


class StreamHost(Protocol):
    market: Market
    broker: Broker

    def clock(self) -> float: ...
    def quotes_open(self) -> bool: ...


@dataclass
class PnLSub:
    req_id: int
    last: tuple[float, ...] = ()
    sent_at: float = 0.0


@dataclass
class PnLSingleSub:
    req_id: int
    con_id: int
    last: tuple[float, ...] = ()
    sent_at: float = 0.0


@dataclass
class BarBuilder:
    """The bar being built: open/high/low/close of the marks seen in it, and its start time."""

    start: float = -1.0
    o: float = 0.0
    h: float = 0.0
    low: float = 0.0
    c: float = 0.0
    n: int = 0

    def add(self, start: float, px: float) -> bool:
        """Add a mark; True when a new bar started (the previous one is complete)."""
        new = start != self.start
        if new:
            self.start, self.o, self.h, self.low, self.n = start, px, px, px, 0
        self.h, self.low, self.c, self.n = max(self.h, px), min(self.low, px), px, self.n + 1
        return new


@dataclass
class RealTimeBarSub:
    req_id: int
    contract: Contract
    bar: BarBuilder = field(default_factory=BarBuilder)
    done: BarBuilder | None = None


@dataclass
class TickByTickSub:
    req_id: int
    contract: Contract
    tick_type: int
    last_key: tuple[float, ...] = ()


@dataclass
class BarUpdateSub:
    """A keepUpToDate historical request: the bar being built is re-sent as it changes."""

    req_id: int
    contract: Contract
    step: int
    format_date: int
    bar: BarBuilder = field(default_factory=BarBuilder)
    sent: tuple[float, ...] = ()
    sent_at: float = 0.0


def pnl_values(broker: Broker, now: float, con_id: int | None = None) -> tuple[float, ...]:
    """(daily, unrealized, realized) for the account, or (pos, daily, unrealized, realized, value)."""
    unreal = realized = 0.0
    for p in broker.positions.values():
        if con_id is not None and p.contract.conId != con_id:
            continue
        mark = broker.market.mark(p.contract, now)
        value = p.qty * mark * p.contract.multiplier
        u = value - p.qty * p.avg_cost if p.qty else 0.0
        unreal += u
        realized += p.realized
        if con_id is not None:
            return (p.qty, round(u + p.realized, 2), round(u, 2), round(p.realized, 2), round(value, 2))
    if con_id is not None:
        return (0.0, 0.0, 0.0, 0.0, 0.0)
    return (round(unreal + realized, 2), round(unreal, 2), round(realized, 2))


def pnl_message(sub: PnLSub | PnLSingleSub, values: tuple[float, ...]) -> list[Any]:
    return [94 if isinstance(sub, PnLSub) else 95, sub.req_id, *values]


def push_all(host: StreamHost, sessions: list[Session]) -> None:
    """One tick: send every stream's news (called by the server's tick loop)."""
    now = host.clock()
    is_open = host.quotes_open()
    for s in sessions:
        for sub in list(s.streams.values()):
            if isinstance(sub, PnLSub | PnLSingleSub):
                _push_pnl(host, s, sub, now)
            elif not is_open:
                continue
            elif isinstance(sub, RealTimeBarSub):
                _push_rt_bar(host, s, sub, now)
            elif isinstance(sub, TickByTickSub):
                _push_tbt(host, s, sub, now)
            elif isinstance(sub, BarUpdateSub):
                _push_bar_update(host, s, sub, now)


def _push_pnl(host: StreamHost, s: Session, sub: PnLSub | PnLSingleSub, now: float) -> None:
    if now - sub.sent_at < PNL_EVERY:
        return
    values = pnl_values(host.broker, now, sub.con_id if isinstance(sub, PnLSingleSub) else None)
    if values != sub.last:
        sub.last, sub.sent_at = values, now
        s.send(pnl_message(sub, values))


def _push_rt_bar(host: StreamHost, s: Session, sub: RealTimeBarSub, now: float) -> None:
    start = math.floor(now / RT_BAR_SECONDS) * RT_BAR_SECONDS
    prev = BarBuilder(sub.bar.start, sub.bar.o, sub.bar.h, sub.bar.low, sub.bar.c, sub.bar.n)
    if sub.bar.add(start, host.market.mark(sub.contract, now)) and prev.start >= 0:
        b = prev
        vol = 100 * b.n
        wap = round((b.o + b.h + b.low + b.c) / 4, 4)
        s.send([50, 3, sub.req_id, int(b.start), b.o, b.h, b.low, b.c, vol, wap, b.n])


def _push_tbt(host: StreamHost, s: Session, sub: TickByTickSub, now: float) -> None:
    q = host.market.quote_for(sub.contract, now)
    t = int(now)
    if sub.tick_type in (1, 2):
        key: tuple[float, ...] = (q.last_time, q.last, q.last_size)
        msg: list[Any] = [99, sub.req_id, sub.tick_type, int(q.last_time), q.last, q.last_size, 0, "ARCA", ""]
    elif sub.tick_type == 3:
        key = (q.bid, q.ask, q.bid_size, q.ask_size)
        msg = [99, sub.req_id, 3, t, q.bid, q.ask, q.bid_size, q.ask_size, 0]
    else:
        mid = round((q.bid + q.ask) / 2, 4)
        key = (mid,)
        msg = [99, sub.req_id, 4, t, mid]
    if key != sub.last_key:
        sub.last_key = key
        s.send(msg)


def _push_bar_update(host: StreamHost, s: Session, sub: BarUpdateSub, now: float) -> None:
    start = math.floor(now / sub.step) * sub.step
    sub.bar.add(start, host.market.mark(sub.contract, now))
    b = sub.bar
    key = (b.start, b.o, b.h, b.low, b.c)
    if key == sub.sent or now - sub.sent_at < 1.0:
        return
    sub.sent, sub.sent_at = key, now
    wap = round((b.o + b.h + b.low + b.c) / 4, 4)
    date = format_bar_date(b.start, sub.step >= 86400, sub.format_date)
    s.send([90, sub.req_id, -1, date, b.o, b.c, b.h, b.low, wap, 100 * b.n])
