"""The operator's live validation checklist, each step calling the same probe code.

Against the simulator by default; ``pytest tests/live_validation --gateway HOST:PORT`` for a real
paper Gateway, with the operator's configuration (``--gateway-config``, default
config/gatewatch.yaml). The paper check runs once for the session (conftest); probe orders are
flattened at the end. Fault steps need the simulator's fault injection and are skipped, with the
reason, on a real Gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from ib_async import Stock
from prometheus_client.parser import text_string_to_metric_families

from exporter.metrics import Metrics
from gatewatch.market_calendar import NYSE
from probes.active import order_probes, request_probes
from probes.passive.base import run_periodically

pytestmark = pytest.mark.live


def _valid(x: float) -> bool:
    return isinstance(x, float) and math.isfinite(x) and x > 0


def _sample(metrics: Metrics, name: str, labels: dict[str, str]) -> float | None:
    """One sample of the exposition the exporter would serve now (None if absent)."""
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


async def _until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait (generously) for an event; fail naming it if it never happens."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not seen within {timeout:g} s"
        await asyncio.sleep(0.05)


async def test_gateway_authentication(session, target):
    accounts = session.ib.managedAccounts()
    assert accounts, "the Gateway names no managed account: not logged in"
    assert target.account in accounts
    if target.config.gateway.account:
        assert target.config.gateway.account in accounts, "the configured account is not served here"
    server_time = await asyncio.wait_for(session.ib.reqCurrentTimeAsync(), target.config.gateway.request_timeout)
    assert abs(server_time.timestamp() - time.time()) < 60, "the server time is not today's session"


async def test_account_balance_retrieval(session, target):
    values = await asyncio.wait_for(session.ib.accountSummaryAsync(target.account), 10)
    tags = {v.tag: v.value for v in values if v.currency in ("USD", "BASE")}
    assert float(tags["NetLiquidation"]) >= target.config.preflight.min_net_liquidation
    assert float(tags["BuyingPower"]) > 0


async def test_position_retrieval_empty_account(session, target):
    positions = await asyncio.wait_for(session.ib.reqPositionsAsync(), 10)
    accounts = session.ib.managedAccounts()
    held = [p for p in positions if p.position != 0]
    assert all(p.account in accounts for p in positions)
    assert all(p.contract.conId and math.isfinite(p.avgCost) and p.avgCost > 0 for p in held), held
    assert session.journal.net_positions() == {}, "the probes must hold nothing between tests"
    if target.sim is not None:
        assert held == [], "a fresh simulator account holds nothing"


async def test_gateway_reconnection_resilience(passive, target):
    """The exporter's own reconnect loop: a lost connection comes back and quotes are resubscribed."""
    session, metrics = passive.session, passive.metrics
    symbols = len(target.config.probes.symbols)
    lines = lambda: metrics.registry.get_sample_value("gatewatch_market_data_lines")  # noqa: E731
    await _until(lambda: lines() == symbols, 30, "every configured symbol streaming")
    events: list[str] = []
    session.on_disconnected.append(lambda: events.append("lost"))
    session.on_connected.append(lambda: events.append("connected"))
    if target.sim is not None:
        target.sim.inject({"fault": "disconnect", "for": "1s"})  # the server drops and refuses for a while
    else:
        session.drop("live validation: reconnection step")  # a real Gateway cannot be made to drop us
    await _until(lambda: "lost" in events, 10, "the connection loss")
    assert lines() == 0, "subscriptions still counted after the loss"
    await _until(lambda: session.connected and events[-1] == "connected", 60, "the reconnection")
    assert events == ["lost", "connected"]
    await _until(lambda: lines() == symbols, 30, "quotes resubscribed after the reconnection")
    assert await asyncio.wait_for(session.ib.reqCurrentTimeAsync(), target.config.gateway.request_timeout)


async def test_market_data_subscription_spy(ctx, target):
    """SPY streams a fresh two-sided quote and a last price, and keeps updating within the staleness limit."""
    if target.sim is None and not NYSE.is_open(datetime.now(UTC)):
        pytest.skip("market closed: a real Gateway streams no fresh SPY quotes now")
    stale_after = target.config.probes.quote_stale_after
    [spy] = await ctx.ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    ticker = ctx.ib.reqMktData(spy, "", False, False)
    updates: list[float] = []
    ticker.updateEvent += lambda t: updates.append(time.time())
    try:
        await _until(lambda: _valid(ticker.bid) and _valid(ticker.ask) and _valid(ticker.last), 3 * stale_after + 5,
                     "a SPY bid, ask and last price")
        first = len(updates)
        await _until(lambda: len(updates) > first, stale_after, "a SPY update within the staleness limit")
    finally:
        ctx.ib.cancelMktData(spy)
    assert ticker.bid < ticker.ask, (ticker.bid, ticker.ask)
    assert ticker.bid * 0.9 < ticker.last < ticker.ask * 1.1, f"last {ticker.last} far from {ticker.bid}/{ticker.ask}"
    assert time.time() - updates[-1] < stale_after


async def test_historical_data_retrieval_spy(ctx, target):
    hist = target.config.probes.historical
    [contract] = await ctx.ib.qualifyContractsAsync(Stock(hist.symbol, "SMART", "USD"))
    bars = await ctx.governor.request(
        lambda: ctx.ib.reqHistoricalDataAsync(contract, "", hist.duration, hist.bar_size, hist.what_to_show,
                                              hist.use_rth, 1),
        timeout=hist.timeout, failed=lambda b: not b)
    assert bars, f"no {hist.bar_size} bars for {hist.symbol}"
    assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high and b.low > 0 for b in bars)
    assert all(a.date < b.date for a, b in itertools.pairwise(bars)), "bars out of time order"


async def test_market_data_multiple_symbols(ctx, target):
    symbols = target.config.probes.symbols
    contracts = await ctx.ib.qualifyContractsAsync(*(Stock(s, "SMART", "USD") for s in symbols))
    assert [c.symbol for c in contracts if c is not None and c.conId] == symbols
    quotes = [await ctx.orders.quote(c) for c in contracts]
    assert all(0 < bid < ask for bid, ask in quotes), dict(zip(symbols, quotes, strict=True))


async def test_market_data_stream_quality(ctx, target):
    duration = target.config.active.stream_test_duration
    stale_after = target.config.probes.quote_stale_after
    ticker = ctx.ib.reqMktData(ctx.instrument)
    updates: list[float] = []
    ticker.updateEvent += lambda t: updates.append(time.monotonic())
    try:
        await asyncio.sleep(duration)
    finally:
        ctx.ib.cancelMktData(ctx.instrument)
    assert len(updates) >= duration, f"{len(updates)} updates in {duration:g} s"
    gaps = [b - a for a, b in itertools.pairwise(updates)]
    assert max(gaps) < stale_after, f"a {max(gaps):.1f} s gap in the stream (stale after {stale_after:g} s)"
    assert _valid(ticker.bid) and _valid(ticker.ask) and ticker.ask > ticker.bid


async def test_paper_trading_limit_order_submission(ctx):
    await order_probes.probe_fill(ctx)
    fills = [f for f in ctx.ib.fills() if ctx.guard.owns(f.execution.orderRef)
             and f.contract.conId == ctx.instrument.conId and ":fill:" in f.execution.orderRef]
    assert fills, "no execution of the fill probe's order reached this client"
    assert fills[-1].execution.side == "BOT" and fills[-1].execution.price > 0
    assert ctx.probe_net() == 1


async def test_paper_trading_position_tracking(ctx):
    """The probes' position shows in the Gateway with its size, also when the account holds more.

    Its average cost is compared with the fills when the account's position is the probes' alone;
    when the bot or a hand trade holds the same contract, the size check still runs (the Gateway
    holds at least what the probes' journal says) and the cost must be a real one.
    """
    detail = await order_probes.probe_position(ctx)
    held = (await ctx.orders.held_by_gateway()).get(ctx.instrument.conId, (None, 0.0))[1]
    assert ctx.probe_net() >= 1 and held >= ctx.probe_net(), detail
    if "cost not compared" in detail:
        assert "average cost" in detail and held > ctx.probe_net(), detail
    else:
        assert "as its fills and commissions make it" in detail, detail


async def test_paper_trading_order_cancellation(ctx):
    await order_probes.probe_cancel(ctx)
    [cancel] = [o for o in ctx.journal.all_orders() if o.probe == "cancel" and o.run_id == ctx.guard.run_id]
    assert cancel.status in ("Cancelled", "ApiCancelled") and cancel.filled == 0
    assert not [t for t in ctx.ib.openTrades() if ctx.guard.owns(t.order.orderRef)]


async def test_paper_trading_close_position(ctx):
    def gateway_qty(held: dict) -> float:
        return held.get(ctx.instrument.conId, (None, 0.0))[1]

    others = gateway_qty(await ctx.orders.held_by_gateway()) - max(ctx.probe_net(), 0.0)
    await order_probes.probe_close(ctx)
    assert ctx.probe_net() == 0
    final = -1.0
    for _ in range(20):  # the Gateway's position update may trail the execution report
        final = gateway_qty(await ctx.orders.held_by_gateway())
        if final == others:
            break
        await asyncio.sleep(0.25)
    assert final == others, f"the Gateway holds {final:g}, expected {others:g} once the probes closed"


async def test_network_timeout_handling(ctx, target):
    """A request really slower than its deadline times out cleanly; its late answer is harmless.

    A simulator is made slow (latency fault); a real Gateway is asked for a year of daily bars
    under a 50 ms deadline, which no answer from IB's historical farm meets. Then the probe's
    expired-deadline case, and the connection still serves requests and quotes.
    """
    timeout = target.config.gateway.request_timeout
    if target.latency is not None:
        target.latency(1500, 2)
        slow = ctx.ib.reqContractDetailsAsync(ctx.instrument)
    else:
        slow = ctx.ib.reqHistoricalDataAsync(ctx.instrument, "", "1 Y", "1 day", "TRADES", True, 1)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(slow, 0.05)
    assert time.monotonic() - started < 1, "the deadline did not cut the slow request short"
    await asyncio.sleep(2.5 if target.latency is not None else 1)  # the late answer arrives for nobody
    assert ctx.ib.isConnected()
    assert await asyncio.wait_for(ctx.ib.reqContractDetailsAsync(ctx.instrument), timeout)
    detail = await request_probes.probe_timeout(ctx)
    assert "timeout caught" in detail and ctx.ib.isConnected()
    assert await ctx.orders.quote(ctx.instrument), "the connection does not serve quotes after the timeout"


async def test_api_rate_limit_handling(ctx):
    errors_before = dict(ctx.governor.errors_seen)
    detail = await request_probes.probe_rate(ctx)
    assert ctx.governor.errors_seen[100] == errors_before[100], "the paced burst provoked error 100"
    assert f"{request_probes.BURST_SIZE} snapshots" in detail and ctx.ib.isConnected()


async def test_market_data_staleness_detection(passive, target):
    """The exporter's quotes probe, on the exporter's schedule, tells fresh from stale, on any Gateway."""
    quotes, metrics = passive.quotes, passive.metrics
    stale_after = target.config.probes.quote_stale_after
    symbol = target.config.probes.symbols[0]
    status = quotes.recorder
    loop = asyncio.create_task(run_periodically(status, quotes.schedule().interval, quotes.run_once,
                                                timeout=target.config.gateway.request_timeout))
    try:
        await _until(lambda: status.status.success is True, 30, "the quotes probe passing")
        if _sample(metrics, "gatewatch_market_open", {"exchange": "NYSE"}) != 1:
            pytest.skip("market closed: the quotes probe judges staleness only while the market is open")
        for s in target.config.probes.symbols:
            assert (_sample(metrics, "gatewatch_quote_age_seconds", {"symbol": s}) or math.inf) < stale_after
            assert _sample(metrics, "gatewatch_quote_sane", {"symbol": s}) == 1
        frozen_at = time.monotonic()
        if target.sim is not None:  # the Gateway's feed freezes
            target.sim.inject({"fault": "freeze", "symbol": symbol, "for": f"{stale_after + 2:g}s"})
        else:  # a real Gateway cannot be frozen: its stream for one symbol is stopped under the probe
            contract = quotes.states[symbol].contract
            assert contract is not None
            passive.session.ib.cancelMktData(contract)
        def age() -> float:
            return _sample(metrics, "gatewatch_quote_age_seconds", {"symbol": symbol}) or 0.0

        # measured by the probe, judged by the QuoteStale rule: the probe itself keeps passing
        await _until(lambda: age() > stale_after, stale_after + 5, f"{symbol} measured stale")
        assert time.monotonic() - frozen_at > stale_after - 1, "stale before the limit could pass"
        assert status.status.success is True, status.status.reason
        assert all((_sample(metrics, "gatewatch_quote_age_seconds", {"symbol": s}) or math.inf) < stale_after
                   for s in target.config.probes.symbols if s != symbol)
        if target.sim is None:
            await quotes.subscribe()  # streams again, as after a reconnection
        await _until(lambda: age() < stale_after, 10, "a fresh quote again after the freeze")
        assert (_sample(metrics, "gatewatch_quote_age_seconds", {"symbol": symbol}) or math.inf) < stale_after
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop


async def test_gateway_error_recovery(ctx):
    detail = await request_probes.probe_error_recovery(ctx)
    assert f"{request_probes.INVALID_SYMBOL}: not found (200)" in detail
    assert ctx.ib.isConnected()
    bid, ask = await ctx.orders.quote(ctx.instrument)
    assert 0 < bid < ask, "quotes stopped after the not-found error"
