"""The quotes probe: are streaming quotes arriving, fresh and sane, for every watched symbol?

Each symbol is qualified once per connection and streamed with ``reqMktData`` (not snapshots: a
stream shows a frozen feed as a growing age, a snapshot would only show "no answer").
Subscriptions are renewed after every reconnect and after error 1101 (IB connectivity restored
with data lost), because the Gateway does not restore them itself.

Freshness: the newest of (arrival time of the last change of bid/ask/last/sizes) and the Gateway's
tick-45 last-trade timestamp. Tick 45 has whole-second resolution, so it only ever wins when the
arrival time is older. A tick only updates the symbol's :class:`QuoteState`; the exporter derives
every quote series from it at scrape time, the age included, so a feed that simply stops shows a
growing age without any event arriving. Before the first quote, the age counts from when the probe
started.

Market hours: ``gatewatch_market_open`` comes from the first symbol's own ``liquidHours`` (contract
details, IBKR's authority, holidays and early closes included) and falls back to the NYSE calendar
for days the contract does not cover. The alerts combine it with the age and sanity series: a quote
that stops changing, or a bid/ask of -1, is what a healthy closed market looks like.

Measurement apart from judgment: the probe succeeds when it can measure (connected, every stream
held); a stale or one-sided quote is judged by the rules only (QuoteStale, QuoteIncomplete), so
PassiveProbeFailing does not fire beside them for the same cause. Failure reasons name what is
wrong, never a figure that changes every run: the recorder logs one line per change.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ib_async import Contract, Stock, Ticker
from loguru import logger

from gatewatch.ib.hours import hours_symbol
from gatewatch.trading_hours import MarketHours
from probes.outcome import ProbeFailure
from probes.passive.base import PassiveContext, Schedule

RESUBSCRIBE_CODES = frozenset({1101})


def unset(value: float | None) -> bool:
    """ib_async keeps a price it has not received as NaN (None in some versions)."""
    return value is None or value != value


def valid_price(value: float | None) -> bool:
    """ib_async keeps unset prices as NaN; an empty side comes as -1 (closed market)."""
    return value is not None and not math.isnan(value) and value > 0


@dataclass
class QuoteState:
    """What the probe knows about one symbol's stream."""

    symbol: str
    watched_since: float = field(default_factory=time.time)
    contract: Contract | None = None
    subscribed: bool = False
    last_change: float | None = None
    gateway_timestamp: float | None = None
    last_values: tuple[float, ...] = ()
    stamp: datetime | None = None  # the Gateway's last-trade time as last converted
    bid: float = math.nan
    ask: float = math.nan
    last: float = math.nan
    ticks: int = 0  # quote updates received; 0 means no series exist yet

    def last_update(self) -> float | None:
        times = [t for t in (self.last_change, self.gateway_timestamp) if t is not None]
        return max(times) if times else None

    def age(self, now: float) -> float:
        newest = self.last_update()
        return max(0.0, now - (newest if newest is not None else self.watched_since))

    def sane(self) -> bool:
        return valid_price(self.bid) and valid_price(self.ask) and self.ask > self.bid


class QuotesProbe:
    """Keeps one streaming subscription per symbol and judges the stream every run."""

    name = "quotes"

    def __init__(self, ctx: PassiveContext) -> None:
        self.session = session = ctx.session
        self.config = config = ctx.config.probes
        self.timeout = ctx.config.gateway.request_timeout
        # A state check at the heartbeat's cadence: what it judges is event-driven or made at scrape time.
        self.interval = ctx.config.probes.heartbeat_interval
        self.recorder = ctx.state.outcomes.recorder(self.name)
        self.states = {symbol: QuoteState(symbol) for symbol in config.symbols}
        self.market_hours = MarketHours()
        self.market_open: bool | None = None
        self.lines = 0
        self._subscribe_lock = asyncio.Lock()
        self._tasks: set[asyncio.Future[None]] = set()
        session.on_connected.append(self.subscribe)
        session.on_disconnected.append(self._on_disconnected)
        session.on_error.append(self._on_error)
        session.ib.pendingTickersEvent += self._on_tickers

    def schedule(self) -> Schedule:
        return Schedule(self.interval, self.timeout)

    async def subscribe(self) -> None:
        """Qualify (once per connection) and stream every symbol; renews existing subscriptions."""
        async with self._subscribe_lock:
            ib = self.session.ib
            ib.reqMarketDataType(self.config.market_data_type)
            for state in self.states.values():
                if not self.session.connected:
                    return
                try:
                    if state.subscribed and state.contract is not None:
                        ib.cancelMktData(state.contract)
                        state.subscribed = False
                    if state.contract is None or not state.contract.conId:
                        state.contract = await self._qualify(state.symbol)
                    ib.reqMktData(state.contract, "", False, False)
                    state.subscribed = True
                except Exception as exc:
                    logger.warning("quotes: cannot subscribe {}: {}", state.symbol, exc or type(exc).__name__)
            self._count_lines()
            streaming = [s.symbol for s in self.states.values() if s.subscribed]
            logger.info("quotes: streaming {}", ", ".join(streaming) or "nothing")

    async def _qualify(self, symbol: str) -> Contract:
        """Contract details rather than a bare qualify: the same answer carries the liquid hours."""
        details = await asyncio.wait_for(
            self.session.ib.reqContractDetailsAsync(Stock(symbol, "SMART", "USD")),
            self.session.config.request_timeout)
        if len(details) != 1 or details[0].contract is None or not details[0].contract.conId:
            raise LookupError(f"no unique contract for {symbol}")
        if symbol == hours_symbol(self.config):  # the one contract whose hours decide (gatewatch.ib.hours)
            self.market_hours.update(details[0].liquidHours, details[0].timeZoneId)
        return details[0].contract

    def _count_lines(self) -> None:
        self.lines = sum(1 for s in self.states.values() if s.subscribed)

    def _on_disconnected(self) -> None:
        for state in self.states.values():
            state.subscribed = False
            state.contract = None  # requalify on the next connection: conIds are per-Gateway facts
        self._count_lines()

    def _on_error(self, _req_id: int, code: int, _message: str) -> None:
        if code in RESUBSCRIBE_CODES and self.session.connected:
            logger.info("quotes: IB connectivity restored with data lost (1101): resubscribing")
            task = asyncio.ensure_future(self.subscribe())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _on_tickers(self, tickers: Iterable[Ticker]) -> None:
        """A few field writes per ticker: this runs on every batch of quotes, and everything derived
        (presence, sanity, spread, age) waits for a scrape."""
        now = time.time()
        states = self.states
        for ticker in tickers:
            state = states.get(getattr(ticker.contract, "symbol", ""))
            if state is None:
                continue
            try:
                state.ticks += len(ticker.ticks) or 1
                bid, ask, last = ticker.bid, ticker.ask, ticker.last
                values = (bid, ask, last, ticker.bidSize, ticker.askSize, ticker.lastSize)
                if values != state.last_values and not (unset(bid) and unset(ask) and unset(last)):
                    state.last_change = now
                state.last_values = values
                stamp = ticker.lastTimestamp
                if stamp is not state.stamp and isinstance(stamp, datetime):  # converted once per new stamp
                    state.stamp = stamp
                    state.gateway_timestamp = (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()
                state.bid, state.ask, state.last = bid, ask, last
            except Exception:
                logger.exception("quotes: could not process a tick for {}", state.symbol)

    async def run_once(self) -> None:
        """Success means every stream is held, so age, prices and sanity can be measured.

        Whether a quote is fresh or sane is judged by the rules (QuoteStale, QuoteIncomplete) from
        the age and sanity series, with the market-hours gauge: a stale quote is not a failed probe,
        so PassiveProbeFailing never fires beside QuoteStale for the same cause.
        """
        async with self._subscribe_lock:  # judge the streams, not a subscription still in progress
            pass
        self.market_open = self.market_hours.is_open(datetime.now(UTC))
        if not self.session.connected:
            raise ProbeFailure("not connected")
        problems = judge(self.states.values())
        if problems:
            raise ProbeFailure("; ".join(problems))


def judge(states: Iterable[QuoteState]) -> list[str]:
    """What keeps the probe from measuring, one stable phrase per symbol (no changing figures)."""
    return [f"{state.symbol} not subscribed" for state in states if not state.subscribed]

