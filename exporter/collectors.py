"""The passive probes' plain state turned into metric families, at scrape time.

Why at scrape time: a tick, or a probe run, then costs a few attribute writes; everything derived
(a field's presence, a quote's sanity, its spread and age) is worked out only when Prometheus asks,
once per scrape instead of once per tick. Each function reads one probe and yields its families;
a family whose probe is absent is simply not yielded (``Metrics`` still shows it, empty).

Reads happen on the HTTP thread while the probes write on the event loop: every read is of one
attribute, and dictionaries are copied with ``list(...)`` (one step under the GIL) before iterating.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from typing import Any

from exporter import metrics as m
from exporter.metrics import Family, LabelValues
from probes.gateway import GatewaySession, GatewayState
from probes.passive.account import AccountProbe
from probes.passive.base import PassiveProbe
from probes.passive.clock import ClockProbe
from probes.passive.connection import ConnectionProbe
from probes.passive.heartbeat import HeartbeatProbe
from probes.passive.historical import HistoricalProbe
from probes.passive.process import ProcessProbe
from probes.passive.quotes import QuotesProbe, valid_price
from probes.passive.reconciliation import ReconciliationProbe
from probes.passive.risk import RiskProbe

Row = tuple[LabelValues, float]
MONEY = {"NetLiquidation": m.ACCOUNT_NET_LIQUIDATION, "TotalCashValue": m.ACCOUNT_CASH,
         "BuyingPower": m.ACCOUNT_BUYING_POWER}
NAN = math.nan


class PassiveFamilies:
    """A family source (``Metrics.add_source``) over the exporter's session and passive probes."""

    def __init__(self, session: GatewaySession, probes: dict[str, PassiveProbe], info: LabelValues) -> None:
        self.session = session
        self.probes = probes
        self.info = info  # (version, gateway address): the same every scrape

    def __call__(self) -> Iterator[Family]:
        yield m.EXPORTER_INFO, [(self.info, 1.0)]
        for probe in self.probes.values():
            show = _FAMILIES.get(type(probe))
            if show is not None:
                yield from show(probe, self.session)


def connection(probe: ConnectionProbe, session: GatewaySession) -> Iterator[Family]:
    connected = session.connected
    since = session.connected_since if connected else None
    yield m.GATEWAY_CONNECTED, [((), 1.0 if connected else 0.0)]
    yield m.GATEWAY_CONNECTED_SINCE, [((), since or 0.0)]
    if session.state:
        yield m.GATEWAY_STATE, [((state,), 1.0 if state == session.state else 0.0) for state in GatewayState.ALL]
    yield m.GATEWAY_CONNECTS, [((), probe.connects)]
    yield m.GATEWAY_DISCONNECTS, [((), probe.disconnects)]
    yield m.GATEWAY_RECONNECT_ATTEMPTS, [((), probe.attempts)]
    yield m.GATEWAY_SERVER_VERSION, [((), probe.server_version)]
    yield m.API_ERRORS, list(probe.api_errors.items())
    yield m.DATA_FARM_CONNECTED, [(key, 1.0 if ok else 0.0) for key, ok in list(probe.farms.items())]
    yield m.COMPETING_SESSION, [((), 0.0 if probe.competing_since is None else 1.0)]
    yield m.CONNECTIVITY_LOST, [((), 1.0 if probe.connectivity_lost else 0.0)]
    yield m.CONNECTIVITY_LOSSES, [((), probe.connectivity_losses)]
    yield m.GATEWAY_LINKED_SINCE, [((), probe.linked_since(since))]


def account(probe: AccountProbe, _session: GatewaySession) -> Iterator[Family]:
    if probe.account:
        yield m.ACCOUNT_INFO, [((probe.account, "paper" if probe.account.startswith("D") else "live"), 1.0)]
    money = list(probe.money.items())
    for tag, spec in MONEY.items():
        yield spec, [((currency,), value) for (t, currency), value in money if t == tag]
    if probe.day_trades_remaining is not None:
        yield m.ACCOUNT_DAY_TRADES_REMAINING, [((), probe.day_trades_remaining)]
    if probe.positions is not None:
        yield m.ACCOUNT_POSITIONS, [((), probe.positions)]


def quotes(probe: QuotesProbe, _session: GatewaySession) -> Iterator[Family]:
    """Per symbol: prices, presence, sanity, spread, ticks, last update, age; then market state."""
    now = time.time()
    bid: list[Row] = []
    ask: list[Row] = []
    last: list[Row] = []
    present: list[Row] = []
    sane: list[Row] = []
    spread: list[Row] = []
    ticks: list[Row] = []
    updated: list[Row] = []
    age: list[Row] = []
    for state in probe.states.values():
        symbol = (state.symbol,)
        age.append((symbol, state.age(now)))
        if not state.ticks:
            continue  # no series before the first quote
        b, a, t = state.bid, state.ask, state.last
        for rows, name, value in ((bid, "bid", b), (ask, "ask", a), (last, "last", t)):
            ok = valid_price(value)
            rows.append((symbol, value if ok else NAN))
            present.append(((state.symbol, name), 1.0 if ok else 0.0))
        is_sane = valid_price(b) and valid_price(a) and a > b
        sane.append((symbol, 1.0 if is_sane else 0.0))
        spread.append((symbol, a - b if is_sane else NAN))
        ticks.append((symbol, state.ticks))
        newest = state.last_update()
        if newest is not None:
            updated.append((symbol, newest))
    yield m.QUOTE_BID, bid
    yield m.QUOTE_ASK, ask
    yield m.QUOTE_LAST, last
    yield m.QUOTE_SPREAD, spread
    yield m.QUOTE_FIELD_PRESENT, present
    yield m.QUOTE_SANE, sane
    yield m.QUOTE_TICKS, ticks
    yield m.QUOTE_LAST_UPDATE, updated
    yield m.QUOTE_AGE, age
    if probe.market_open is not None:
        yield m.MARKET_OPEN, [(("NYSE",), 1.0 if probe.market_open else 0.0)]
    yield m.MARKET_DATA_LINES, [((), probe.lines)]


def heartbeat(probe: HeartbeatProbe, _session: GatewaySession) -> Iterator[Family]:
    yield m.HEARTBEAT_RTT, probe.rtt


def clock(probe: ClockProbe, _session: GatewaySession) -> Iterator[Family]:
    skew = probe.skew
    if skew is not None:
        yield m.CLOCK_SKEW, [((), skew[0])]
        yield m.CLOCK_SKEW_UNCERTAINTY, [((), skew[1])]
    if probe.ntp_synchronized is not None:
        yield m.HOST_NTP_SYNCHRONIZED, [((), 1.0 if probe.ntp_synchronized else 0.0)]


def historical(probe: HistoricalProbe, _session: GatewaySession) -> Iterator[Family]:
    if not probe.config.enabled:
        return
    yield m.HISTORICAL_BARS, [((symbol,), bars) for symbol, bars in list(probe.bars.items())]
    yield m.HISTORICAL_REQUEST_DURATION, probe.duration
    yield m.HISTORICAL_TIMEOUTS, [((), probe.timeouts)]


def reconciliation(probe: ReconciliationProbe, _session: GatewaySession) -> Iterator[Family]:
    yield m.GATEWAY_POSITION, list(probe.positions.items())
    yield m.POSITION_DRIFT, list(probe.drift.items())
    yield m.RECONCILIATION_DISCREPANCIES, [((source,), n) for source, n in list(probe.discrepancies.items())]
    yield m.EXECUTIONS, [((made_by,), n) for made_by, n in list(probe.executions.items())]


def risk(probe: RiskProbe, _session: GatewaySession) -> Iterator[Family]:
    yield m.POSITION_EXPOSURE_RATIO, [((key,), ratio) for key, ratio in list(probe.exposure.items())]
    yield m.RISK_MAX_POSITION_RATIO, [((), probe.limit)]
    yield m.TRADE_RISK_RATIO, [((key,), ratio) for key, ratio in list(probe.trade_risk.items())]
    yield m.RISK_LIMIT_FAILS_SESSION, [((name,), 1.0 if on else 0.0) for name, on in probe.fails_session.items()]


def process(probe: ProcessProbe, _session: GatewaySession) -> Iterator[Family]:
    samples = list(probe.samples.items())
    up = [(name, s) for name, s in samples if s.up]
    yield m.PROCESS_RESIDENT_MEMORY, [((name,), s.rss) for name, s in up]
    yield m.PROCESS_CPU_SECONDS, [((name,), s.cpu_seconds) for name, s in up]
    yield m.PROCESS_OPEN_FDS, [((name,), s.fds) for name, s in up]
    yield m.PROCESS_UP, [((name,), 1.0 if s.up else 0.0) for name, s in samples]
    if probe.asyncio_tasks is not None:
        yield m.EXPORTER_ASYNCIO_TASKS, [((), probe.asyncio_tasks)]
    if probe.host_cpu is not None:
        yield m.HOST_CPU_USAGE_RATIO, [((), probe.host_cpu)]
    if probe.host_memory is not None:
        yield m.HOST_MEMORY_USAGE_RATIO, [((), probe.host_memory)]


_FAMILIES: dict[type, Callable[[Any, GatewaySession], Iterator[Family]]] = {
    ConnectionProbe: connection, AccountProbe: account, QuotesProbe: quotes, HeartbeatProbe: heartbeat,
    ClockProbe: clock, HistoricalProbe: historical, ReconciliationProbe: reconciliation, RiskProbe: risk,
    ProcessProbe: process,
}
"""Which function shows which probe's state: a new passive probe with metrics adds one line here."""
