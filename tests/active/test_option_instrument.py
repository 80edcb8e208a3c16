"""Option instrument: nearest expiry, cheapest-near-the-money OTM strike confirmed by contract details.

The simulator's chain is a union over expiries (far expiries have coarser, wider grids), so it
lists strikes the nearest expiry lacks: the trap the selection must avoid.
"""

from __future__ import annotations

import datetime as dt

import pytest
from ib_async import IB, Option, Stock
from support.active import held, open_orders, real_orders

from probes.active.instrument import EXCHANGE_ZONE
from probes.active.runner import ActiveSession, run_probes

MAX_PRICE = 0.50


def option_config(config_for, sim, right: str = "C", max_price: float = MAX_PRICE):
    return config_for(sim, instrument={"kind": "option", "symbol": "SPY", "right": right,
                                       "max_option_price": max_price})


async def _chain_facts(ib: IB, right: str) -> tuple[str, set[float], set[float], float]:
    """(nearest expiry, its confirmed strikes, the chain's strike union, spot) as the Gateway states them."""
    [stock] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    [chain] = [c for c in await ib.reqSecDefOptParamsAsync("SPY", "", "STK", stock.conId) if c.exchange == "SMART"]
    today = dt.datetime.now(EXCHANGE_ZONE).strftime("%Y%m%d")
    nearest = min(e for e in chain.expirations if e >= today)
    details = await ib.reqContractDetailsAsync(Option("SPY", nearest, 0.0, right, "SMART", currency="USD"))
    [spy] = await ib.reqTickersAsync(stock)
    return nearest, {d.contract.strike for d in details if d.contract}, set(chain.strikes), (spy.bid + spy.ask) / 2


async def _ask_bid(ib: IB, expiry: str, strike: float, right: str) -> tuple[float, float]:
    [contract] = await ib.qualifyContractsAsync(Option("SPY", expiry, strike, right, "SMART", currency="USD"))
    [ticker] = await ib.reqTickersAsync(contract)
    return ticker.ask, ticker.bid


@pytest.mark.parametrize(("right", "max_price"), [("C", MAX_PRICE), ("P", MAX_PRICE), ("C", 4.0)])
async def test_option_is_nearest_expiry_and_nearest_cheap_confirmed_otm_strike(sim, config_for, right, max_price):
    sim.inject({"fault": "freeze", "symbol": "SPY", "for": "15s"})  # a still market: the boundary cannot move
    async with ActiveSession(option_config(config_for, sim, right, max_price)) as session:
        option = (await session.context()).instrument
        ib = session.ib
        expiry, confirmed, union, spot = await _chain_facts(ib, right)
        assert union - confirmed, "precondition: the chain lists strikes the nearest expiry lacks"
        assert option.secType == "OPT" and option.right == right
        assert option.lastTradeDateOrContractMonth == expiry
        assert option.strike in confirmed
        assert len(await ib.reqContractDetailsAsync(
            Option("SPY", expiry, option.strike, right, "SMART", currency="USD"))) == 1
        assert option.strike > spot if right == "C" else option.strike < spot
        ask, bid = await _ask_bid(ib, expiry, option.strike, right)
        assert bid > 0 and 0 < ask <= max_price
        closer = [k for k in confirmed if (spot < k < option.strike if right == "C" else option.strike < k < spot)]
        if closer:  # the next confirmed strike toward the money is too expensive: the pick is the nearest
            nearer = min(closer) if right == "P" else max(closer)
            assert (await _ask_bid(ib, expiry, nearer, right))[0] > max_price
        near_traps = [k for k in union - confirmed if abs(k - spot) <= abs(option.strike - spot) + 5]
        assert near_traps, "precondition: strikes the expiry lacks lie where the search looked"


async def test_order_probes_pass_on_the_option(sim, config_for):
    config = option_config(config_for, sim)
    report = await run_probes(config, only=["fill", "position", "cancel", "close", "close_retry"], backoff_base=0.05)
    assert [(r.name, r.ok) for r in report.results] == [
        ("fill", True), ("position", True), ("cancel", True), ("close", True), ("close_retry", True)
    ], [r.detail for r in report.results]
    orders = real_orders(sim)
    assert orders and all(o["secType"] == "OPT" and o["orderRef"].startswith("gatewatch:") for o in orders)
    assert all(o["lmtPrice"] * 100 <= config.active.max_notional for o in orders)
    assert open_orders(sim) == [] and held(sim) == {}
