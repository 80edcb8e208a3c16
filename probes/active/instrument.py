"""Choose what the active probes trade, at run time.

Why at run time: an option chosen by a hard-coded date stops existing on expiry day. Why the
contract-details step: reqSecDefOptParams lists strikes as a union over ALL expiries (far
expiries have wider, coarser grids), so a strike from the chain may not exist for the nearest
expiry. The probes therefore ask contract details for the whole expiry (one request, strike left
open) and choose only among the strikes it confirms. Among those, the OTM strike nearest the
money whose ask is at or below ``max_option_price`` and that has a bid (so it can be closed):
premiums fall as strikes move away from spot, so a binary search needs only a few quotes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from zoneinfo import ZoneInfo

from ib_async import IB, Contract, Option, Stock, Ticker
from loguru import logger

from gatewatch.config import ActiveConfig
from probes.active.orders import ProbeFailure, ProbeOrders

EXCHANGE_ZONE = ZoneInfo("America/New_York")
MAX_EXPIRIES_TRIED = 3
"""An expiry the chain lists but contract details do not confirm (expired today) is skipped."""


async def resolve_instrument(
    ib: IB, active: ActiveConfig, orders: ProbeOrders, today: dt.date | None = None
) -> Contract:
    """The qualified contract to trade: the stock, or a cheap OTM option of the nearest expiry."""
    timeout = active.fill_timeout
    inst = active.instrument
    stocks = await asyncio.wait_for(ib.qualifyContractsAsync(Stock(inst.symbol, "SMART", "USD")), timeout)
    stock = stocks[0] if stocks else None
    if not isinstance(stock, Contract) or not stock.conId:
        raise ProbeFailure(f"active.instrument.symbol {inst.symbol!r}: no security definition found")
    if inst.kind == "stock":
        return stock
    stock_bid, stock_ask = await orders.quote(stock)
    spot = (stock_bid + stock_ask) / 2
    chains = await orders.governor.request(
        lambda: ib.reqSecDefOptParamsAsync(stock.symbol, "", "STK", stock.conId), timeout=timeout
    )
    chain = next((c for c in chains if c.exchange == "SMART"), chains[0] if chains else None)
    if chain is None:
        raise ProbeFailure(f"no option chain for {stock.symbol}")
    first_day = (today or dt.datetime.now(EXCHANGE_ZONE).date()) + dt.timedelta(days=inst.min_days_to_expiry)
    expiries = sorted(e for e in chain.expirations if dt.datetime.strptime(e, "%Y%m%d").date() >= first_day)
    if not expiries:
        raise ProbeFailure(f"no {stock.symbol} expiry on or after {first_day}")
    for expiry in expiries[:MAX_EXPIRIES_TRIED]:
        listed = await expiry_contracts(ib, orders, stock, expiry, inst.right, chain.tradingClass, timeout)
        if not listed:
            logger.info("option chain lists {} {} but contract details confirm no strike: next expiry",
                        stock.symbol, expiry)
            continue
        otm = sorted(
            (k for k in listed if (k > spot if inst.right == "C" else k < spot)), key=lambda k: abs(k - spot)
        )
        pick = await nearest_cheap_strike(orders, [listed[k] for k in otm], inst.max_option_price, timeout)
        if pick is None:
            raise ProbeFailure(
                f"no {stock.symbol} {expiry} {inst.right} OTM strike (of {len(otm)} confirmed) has a bid and "
                f"an ask <= active.instrument.max_option_price {inst.max_option_price}"
            )
        option, ask = pick
        logger.info("probe instrument: {} ask {} (<= {})", option.localSymbol, ask, inst.max_option_price)
        return option
    raise ProbeFailure(f"contract details confirm no {stock.symbol} option in expiries {expiries[:MAX_EXPIRIES_TRIED]}")


async def expiry_contracts(
    ib: IB,
    orders: ProbeOrders,
    stock: Contract,
    expiry: str,
    right: str,
    trading_class: str,
    timeout: float,
) -> dict[float, Contract]:
    """strike -> contract for every strike contract details confirm in this expiry and right."""
    details = await orders.governor.request(
        lambda: ib.reqContractDetailsAsync(
            Option(stock.symbol, expiry, 0.0, right, "SMART", tradingClass=trading_class, currency="USD")
        ),
        timeout=timeout,
    )
    return {
        d.contract.strike: d.contract
        for d in details
        if d.contract is not None and d.contract.lastTradeDateOrContractMonth.startswith(expiry)
    }


async def nearest_cheap_strike(
    orders: ProbeOrders, by_distance: list[Contract], max_price: float, timeout: float
) -> tuple[Contract, float] | None:
    """The first contract (nearest the money) whose ask <= ``max_price`` and that has a bid.

    Asks fall with distance from spot, so "ask <= max" is false then true along the list: a
    binary search finds where it turns. Beyond that point, strikes only get cheaper and, far
    out, lose their bid; so if the turning point has no bid, no strike qualifies.
    """
    lo, hi = 0, len(by_distance)
    quotes: dict[int, tuple[float, float]] = {}
    while lo < hi:
        mid = (lo + hi) // 2
        quotes[mid] = await snapshot_quote(orders, by_distance[mid], timeout)
        ask = quotes[mid][1]
        if math.isfinite(ask) and ask > max_price:
            lo = mid + 1
        else:
            hi = mid
    if lo == len(by_distance):
        return None
    bid, ask = quotes.get(lo) or await snapshot_quote(orders, by_distance[lo], timeout)
    if not (bid > 0 and 0 < ask <= max_price):
        return None
    return by_distance[lo], ask


async def snapshot_quote(orders: ProbeOrders, contract: Contract, timeout: float) -> tuple[float, float]:
    """(bid, ask) from one paced snapshot; NaN where the market shows no price."""
    ib = orders.ib
    tickers: list[Ticker] = await orders.governor.request(lambda: ib.reqTickersAsync(contract), timeout=timeout)
    if not tickers:
        return math.nan, math.nan
    return _price(tickers[0].bid), _price(tickers[0].ask)


def _price(value: float | None) -> float:
    return float(value) if value is not None and math.isfinite(value) and value > 0 else math.nan
