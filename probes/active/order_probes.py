"""The order-path probes: each proves one behaviour of real paper orders and says what it saw.

Each probe returns a one-line detail on success and raises ProbeFailure (or OrderRefused)
otherwise. Probes that need a position open one only if the probes hold none, so running the whole
set shares positions (fill -> position -> close) and keeps the order count low.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

from ib_async import Fill, LimitOrder
from loguru import logger

from probes.active.context import ProbeContext
from probes.active.guard import multiplier_of
from probes.active.orders import CANCEL_OF_FILLED, ProbeFailure, floor_tick, marketable_buy_limit, round_tick

REJECT_CODE = 201
AVERAGE_COST_TOLERANCE = 0.01
"""USD, in the unit the Gateway reports avgCost in (per share; per contract for options).

IB computes avgCost from the same fill prices and commissions its execution and commission reports
carry, so a disagreement beyond a cent is a real one (a price or commission lost or double counted),
not rounding."""


async def probe_fill(ctx: ProbeContext) -> str:
    """A marketable limit buy (ask + collar) fills; latency is placeOrder -> execution report."""
    _sent, result = await ctx.orders.buy_marketable(ctx.instrument, probe="fill")
    latency = f"{result.latency * 1000:.1f} ms" if result.latency is not None else "n/a"
    return f"bought {result.filled:g} at {result.avg_price:g}, fill latency {latency}"


async def _ensure_long(ctx: ProbeContext, probe: str) -> None:
    if ctx.probe_net() <= 0:
        await ctx.orders.buy_marketable(ctx.instrument, probe=probe)


@dataclass(frozen=True)
class FillCost:
    """One execution as it bears on the Gateway's average cost."""

    side: str  # "BOT" or "SLD", as in the execution report
    shares: float
    price: float
    commission: float


def expected_average_cost(fills: Iterable[FillCost], multiplier: float) -> tuple[float, float | None]:
    """Replay executions the way IB averages a position: (quantity, avgCost it should report).

    IB's avgCost includes commission and is per unit of the position: per share for stock, per
    contract (price x multiplier) for options, so 1 share bought at 512.45 with 1.00 commission
    reads 513.45, and 1 option bought at 0.45 with 0.65 commission reads 45.65. Adding to a position
    re-averages (commissions included); reducing it leaves avgCost unchanged (the commission goes to
    realized P&L); going flat starts afresh. ``None`` when a fill flipped the position through zero:
    how IB splits that fill's commission is not documented, and the probes never flip.
    """
    qty = 0.0
    avg: float | None = 0.0
    for fill in fills:
        sign = 1.0 if fill.side == "BOT" else -1.0
        signed = sign * fill.shares
        if qty == 0 or (qty > 0) == (signed > 0):
            held = abs(qty)
            base = (avg or 0.0) * held if qty else 0.0
            avg = (base + fill.shares * fill.price * multiplier + sign * fill.commission) / (held + fill.shares)
            qty += signed
        else:
            new_qty = qty + signed
            if abs(new_qty) < 1e-9:
                qty, avg = 0.0, 0.0
            elif (new_qty > 0) != (qty > 0):
                qty, avg = new_qty, None
            else:
                qty = new_qty
    return qty, avg


def average_cost_mismatch(reported: float, expected: float, tolerance: float = AVERAGE_COST_TOLERANCE) -> str | None:
    """Why the Gateway's avgCost disagrees with the fills, or None when it agrees within ``tolerance``."""
    if not math.isfinite(reported) or abs(reported - expected) > tolerance + 1e-9:
        return (f"Gateway average cost {reported:.4f} is not what the fills make it ({expected:.4f}: "
                f"price x multiplier + commission per unit), off by {reported - expected:+.4f}")
    return None


async def _position_fills(ctx: ProbeContext) -> list[Fill]:
    """This client's executions in the instrument, each with its commission report.

    The commission report is a separate message that follows the execution; avgCost cannot be
    checked without it, so wait for it (bounded) and fail if the Gateway never sends it.
    """
    deadline = time.monotonic() + ctx.config.active.cancel_timeout
    while True:
        fills = [f for f in ctx.ib.fills()
                 if f.contract.conId == ctx.instrument.conId and f.execution.acctNumber == ctx.guard.account]
        missing = [f.execution.execId for f in fills if not f.commissionReport.execId]
        if not missing:
            return fills
        if time.monotonic() >= deadline:
            raise ProbeFailure(f"no commission report for execution(s) {', '.join(missing)} "
                               f"within {ctx.config.active.cancel_timeout:g} s")
        await asyncio.sleep(0.05)


async def probe_position(ctx: ProbeContext) -> str:
    """The probes' position shows in the Gateway's positions with the right size and cost.

    The cost check compares the Gateway's avgCost with what this client's own executions and
    commission reports make it (:func:`expected_average_cost`). It applies when the Gateway's
    position is exactly what those executions add up to; when it holds more (a trade by another
    client or by hand in the same contract), its average mixes in costs this client cannot see, and
    the detail says the cost was not compared. The position is re-read until the cost agrees or
    ``active.cancel_timeout`` passes: position and commission updates are separate messages.
    """
    await _ensure_long(ctx, "position")
    expected = ctx.probe_net()
    fills = await _position_fills(ctx)
    replayed, expected_cost = expected_average_cost(
        (FillCost(f.execution.side, float(f.execution.shares), float(f.execution.price),
                  float(f.commissionReport.commission)) for f in fills),
        multiplier_of(ctx.instrument),
    )
    deadline = time.monotonic() + ctx.config.active.cancel_timeout
    while True:
        positions = await asyncio.wait_for(ctx.ib.reqPositionsAsync(), ctx.config.active.cancel_timeout)
        mine = [
            p for p in positions if p.contract.conId == ctx.instrument.conId and p.account == ctx.guard.account
        ]
        if not mine:
            raise ProbeFailure(f"the Gateway reports no position in {ctx.instrument.localSymbol}")
        held, avg_cost = float(mine[0].position), float(mine[0].avgCost)
        if held < expected:
            raise ProbeFailure(f"Gateway holds {held:g}, probes' journal expects at least {expected:g}")
        summary = f"Gateway holds {held:g} (probes {expected:g}) at average cost {avg_cost:.4f}"
        if held != replayed or expected_cost is None:
            if not avg_cost > 0:
                raise ProbeFailure(f"position average cost is {avg_cost}")
            return (f"{summary}; cost not compared: the position includes trades this client did not make "
                    f"(its executions add up to {replayed:g})")
        problem = average_cost_mismatch(avg_cost, expected_cost)
        if problem is None:
            return f"{summary}, as its fills and commissions make it"
        if time.monotonic() >= deadline:
            raise ProbeFailure(problem)
        await asyncio.sleep(0.5)


async def probe_cancel(ctx: ProbeContext) -> str:
    """A resting limit far below the market is accepted, then cancelled and confirmed."""
    bid, _ = await ctx.orders.quote(ctx.instrument)
    price = max(round_tick(bid * 0.8), 0.01)
    sent = await ctx.orders.send_limit(ctx.instrument, "BUY", price, probe="cancel", resting=True)
    result = await ctx.orders.wait_done_or_filled(sent, 1.0)
    if result.status in ("Inactive", "Cancelled") or result.filled:
        raise ProbeFailure(f"resting order was not accepted as resting: status {result.status}")
    status = await ctx.orders.cancel(sent)
    if status not in ("Cancelled", "ApiCancelled"):
        raise ProbeFailure(
            f"cancel not confirmed within {ctx.config.active.cancel_timeout:g} s (status {status})"
        )
    return f"resting buy at {price} cancelled ({status})"


async def probe_close(ctx: ProbeContext) -> str:
    """Selling the probes' position (marketable from the bid) leaves it flat, journal and Gateway agreeing."""
    await _ensure_long(ctx, "close")
    qty = ctx.probe_net()
    await ctx.orders.close(ctx.instrument, qty, probe="close")
    held = (await ctx.orders.held_by_gateway()).get(ctx.instrument.conId, (None, 0.0))[1]
    if ctx.probe_net() != 0:
        raise ProbeFailure(f"journal still shows {ctx.probe_net():g} after the close")
    return f"closed {qty:g}; probes flat, Gateway holds {held:g}"


async def probe_cancel_race(ctx: ProbeContext) -> str:
    """Cancelling an order that already filled: the fill stands (161/10148) and the position is right."""
    before = ctx.probe_net()
    sent, _ = await ctx.orders.buy_marketable(ctx.instrument, probe="cancel_race")
    await ctx.orders.pace()
    ctx.ib.cancelOrder(sent.trade.order)
    order_id = sent.trade.order.orderId
    for _ in range(40):
        if set(ctx.orders.errors.codes(order_id)) & set(CANCEL_OF_FILLED):
            break
        await asyncio.sleep(0.05)
    codes = ctx.orders.errors.codes(order_id)
    if sent.trade.orderStatus.status != "Filled":
        raise ProbeFailure(f"filled order changed to {sent.trade.orderStatus.status} after cancel")
    if not set(codes) & set(CANCEL_OF_FILLED):
        raise ProbeFailure(f"expected 161/10148 for the late cancel, got {codes or 'nothing'}")
    if ctx.probe_net() != before + 1:
        raise ProbeFailure(f"journal position {ctx.probe_net():g}, expected {before + 1:g}")
    await ctx.orders.close(ctx.instrument, 1, probe="cancel_race")
    return f"late cancel answered {codes[-1]}; fill kept, position +1 then closed"


async def probe_duplicate(ctx: ProbeContext) -> str:
    """The same order sent twice quickly gets two ids; both fill and are counted, then closed."""
    before = ctx.probe_net()
    _, ask = await ctx.orders.quote(ctx.instrument)
    price = marketable_buy_limit(ask)
    first = await ctx.orders.send_limit(ctx.instrument, "BUY", price, probe="duplicate")
    second = await ctx.orders.send_limit(ctx.instrument, "BUY", price, probe="duplicate")
    ids = (first.trade.order.orderId, second.trade.order.orderId)
    if ids[0] == ids[1]:
        raise ProbeFailure(f"both submissions got order id {ids[0]}")
    results = await asyncio.gather(
        *(ctx.orders.wait_done_or_filled(s, ctx.config.active.fill_timeout) for s in (first, second))
    )
    for sent, result in zip((first, second), results, strict=True):
        if result.filled < 1:
            await ctx.orders.cancel(sent)
    filled = sum(r.filled for r in results)
    if ctx.probe_net() != before + filled:
        raise ProbeFailure(f"journal position {ctx.probe_net():g}, expected {before + filled:g}")
    if filled:
        await ctx.orders.close(ctx.instrument, filled, probe="duplicate")
    if filled != 2:
        raise ProbeFailure(f"duplicate orders {ids}: only {filled:g} of 2 filled")
    return f"two ids {ids}, both filled and tracked, closed"


async def probe_reject(ctx: ProbeContext) -> str:
    """An order beyond buying power is rejected (201) with a reason, and not retried.

    See PaperGuard.place_reject_test for why this oversized order cannot trade.
    """
    bid, _ = await ctx.orders.quote(ctx.instrument)
    price = max(floor_tick(bid * 0.5), 0.01)
    values = {
        v.tag: v.value for v in ctx.ib.accountValues(ctx.guard.account) if v.currency in ("USD", "BASE")
    }
    try:
        buying_power = float(values.get("BuyingPower", "nan"))
    except ValueError:
        buying_power = float("nan")
    if not buying_power > 0:
        raise ProbeFailure("no BuyingPower account value to size the reject test")
    multiplier = float(ctx.instrument.multiplier or 1)
    quantity = int(buying_power * 2 / (price * multiplier)) + 1
    await ctx.orders.pace()
    sent = await ctx.guard.place_reject_test(
        ctx.instrument, LimitOrder("BUY", quantity, price, tif="DAY"), probe="reject", bid=bid
    )
    result = await ctx.orders.wait_done_or_filled(sent, ctx.config.active.cancel_timeout)
    order_id = sent.trade.order.orderId
    if REJECT_CODE not in ctx.orders.errors.codes(order_id):
        status = await ctx.orders.cancel(sent)
        raise ProbeFailure(f"oversized order was not rejected (status {result.status}); cancelled: {status}")
    same_ref = [t for t in ctx.ib.trades() if t.order.orderRef == sent.order_ref]
    if len(same_ref) != 1:
        raise ProbeFailure(f"the rejected order was sent {len(same_ref)} times")
    reason = ctx.orders.errors.text(order_id, REJECT_CODE)
    logger.info("reject probe: order {} rejected as expected: {}", order_id, reason)
    return f"rejected (201): {reason[:80]}"


async def probe_close_retry(ctx: ProbeContext) -> str:
    """A close that does not fill is re-priced toward the mid, escalates, then still flattens.

    The first sell is priced well above the ask (2 %) so it cannot fill at once; each re-price
    halves the distance to the current mid, so in a steady market all configured attempts are used
    and the escalation path (counter, loud log line, final marketable close) is exercised for real.

    A market that rises into a re-priced order fills it: that is the re-pricing doing its job, not a
    fault, so the probe passes and says the escalation was not reached this run. It fails on what
    would be a real fault: more re-prices than configured, an escalation before the last attempt or
    counted twice, or a position still held afterwards.
    """
    await _ensure_long(ctx, "close_retry")
    held_before = ctx.probe_net()
    qty = min(held_before, float(ctx.config.active.max_quantity))
    _, ask = await ctx.orders.quote(ctx.instrument)
    escalations_before = _escalations(ctx)
    reprices = await ctx.orders.close(
        ctx.instrument, qty, probe="close_retry", first_price=round_tick(ask * 1.02 + 0.05)
    )
    attempts = ctx.config.active.close_retry_attempts
    escalated = _escalations(ctx) - escalations_before
    if reprices > attempts:
        raise ProbeFailure(f"{reprices} re-prices, more than the configured {attempts}")
    held_after = ctx.probe_net()
    if held_after > held_before - qty + 1e-9:
        raise ProbeFailure(f"journal still shows {held_after:g} after the close")
    if ctx.metrics is None:
        return f"{reprices} re-prices toward the mid, then closed"
    if escalated > 1 or (escalated == 1 and reprices != attempts):
        raise ProbeFailure(f"escalation counted {escalated:g} time(s) after {reprices} of {attempts} re-prices")
    if escalated == 0:  # close() returned without escalating: a re-priced order filled
        return f"filled on re-price {reprices} of {attempts} (the market moved to it); escalation not reached"
    return f"{reprices} re-prices toward the mid, escalated, then closed marketable from the bid"


def _escalations(ctx: ProbeContext) -> float:
    if ctx.metrics is None:
        return 0.0
    return float(ctx.metrics.close_escalations["close_retry"])
