"""Choose what the active probes trade, at run time.

Why at run time: an option chosen by a hard-coded date stops existing on expiry day. The chain
from reqSecDefOptParams lists strikes as a union over all expiries, so a strike/expiry pair is
used only after contract details confirm it exists; the premium cap keeps a probe's risk tiny.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from ib_async import IB, Contract, Option, Stock
from loguru import logger

from gatewatch.config import ActiveConfig
from probes.active.orders import ProbeFailure, ProbeOrders

MAX_STRIKES_TRIED = 12


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
    chains = await asyncio.wait_for(ib.reqSecDefOptParamsAsync(stock.symbol, "", "STK", stock.conId), timeout)
    chain = next((c for c in chains if c.exchange == "SMART"), chains[0] if chains else None)
    if chain is None:
        raise ProbeFailure(f"no option chain for {stock.symbol}")
    first_day = (today or dt.date.today()) + dt.timedelta(days=inst.min_days_to_expiry)
    expiries = sorted(e for e in chain.expirations if dt.datetime.strptime(e, "%Y%m%d").date() >= first_day)
    if not expiries:
        raise ProbeFailure(f"no {stock.symbol} expiry on or after {first_day}")
    expiry = expiries[0]
    otm = sorted(
        (s for s in chain.strikes if (s > spot if inst.right == "C" else s < spot)),
        key=lambda s: abs(s - spot),
    )
    # Premiums fall as strikes move away from spot: binary search for the nearest cheap strike.
    lo, hi, tried = 0, len(otm) - 1, 0
    best: tuple[Contract, float] | None = None
    while lo <= hi and tried < MAX_STRIKES_TRIED:
        mid = (lo + hi) // 2
        tried += 1
        option = await _confirmed_option(ib, stock, expiry, otm[mid], inst.right, chain.tradingClass, timeout)
        ask: float | None = None
        if option is not None:
            try:
                ask = (await orders.quote(option, timeout=5.0))[1]
            except ProbeFailure:
                ask = None
        if option is not None and ask is not None and ask <= inst.max_option_price:
            best, hi = (option, ask), mid - 1
        else:
            lo = mid + 1
    if best is not None:
        logger.info(
            "probe instrument: {} ask {} (<= {})", best[0].localSymbol, best[1], inst.max_option_price
        )
        return best[0]
    raise ProbeFailure(
        f"no {stock.symbol} {expiry} {inst.right} strike within {MAX_STRIKES_TRIED} tried "
        f"has an ask <= active.instrument.max_option_price {inst.max_option_price}"
    )


async def _confirmed_option(
    ib: IB, stock: Contract, expiry: str, strike: float, right: str, trading_class: str, timeout: float
) -> Contract | None:
    """The option if contract details confirm this expiry/strike pair exists, else None."""
    details = await asyncio.wait_for(
        ib.reqContractDetailsAsync(
            Option(stock.symbol, expiry, strike, right, "SMART", tradingClass=trading_class, currency="USD")
        ),
        timeout,
    )
    if len(details) != 1 or details[0].contract is None:
        return None  # the chain's strike union lists it; this expiry does not have it
    return details[0].contract
