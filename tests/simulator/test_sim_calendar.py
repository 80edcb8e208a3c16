"""`market: calendar`: closed market freezes quotes, -1 live bid/ask, orders rest until the open."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

from ib_async import MarketOrder, Stock
from support.sim import connect

from gatewatch.market_calendar import EASTERN, NYSE
from gatewatch.trading_hours import MarketHours
from simulator.testing import running_simulator


def _shift_to(target: dt.datetime) -> dict[str, object]:
    return {"fault": "clock_shift", "ms": (target.timestamp() - time.time()) * 1000}


async def test_calendar_closed_then_open() -> None:
    now = dt.datetime.now(dt.UTC)
    saturday = (now + dt.timedelta(days=(5 - now.weekday()) % 7 or 7)).replace(hour=17, minute=0)
    assert not NYSE.is_open(saturday)
    opening = NYSE.next_open(saturday) + dt.timedelta(minutes=30)
    with running_simulator(market="calendar", tick_hz=20) as sim:
        sim.inject(_shift_to(saturday))
        ib = await connect(sim, 1)
        [c] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
        q1 = sim.state()["quotes"]["SPY"]
        [tk] = await ib.reqTickersAsync(c)
        assert tk.bid == -1 and tk.ask == -1
        ib.reqMarketDataType(2)
        [frozen] = await ib.reqTickersAsync(c)
        assert frozen.bid == q1["bid"]
        trade = ib.placeOrder(c, MarketOrder("BUY", 1))
        await asyncio.sleep(0.4)
        assert trade.orderStatus.status == "PreSubmitted"
        assert sim.state()["quotes"]["SPY"] == q1 and sim.state()["market_open"] is False
        sim.inject(_shift_to(opening))
        for _ in range(150):
            if trade.orderStatus.status == "Filled":
                break
            await asyncio.sleep(0.02)
        assert trade.orderStatus.status == "Filled"
        ib.disconnect()


async def test_pre_market_quotes_from_four_but_not_at_three() -> None:
    """The contract's trading hours start at 04:00 ET: quotes stream then; at 03:00 they are blank.
    A plain order waits for the regular open; an outside-RTH one may fill in the pre-market."""
    day = NYSE.next_open(dt.datetime.now(dt.UTC)).astimezone(EASTERN).date()
    with running_simulator(market="calendar", tick_hz=20) as sim:
        sim.inject(_shift_to(dt.datetime.combine(day, dt.time(3, 0), EASTERN)))
        ib = await connect(sim, 1)
        [c] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
        [tk] = await ib.reqTickersAsync(c)
        assert tk.bid == -1
        sim.inject(_shift_to(dt.datetime.combine(day, dt.time(5, 0), EASTERN)))
        await asyncio.sleep(1.1)  # the session state is re-read once a second
        [tk] = await ib.reqTickersAsync(c)
        assert tk.bid > 0 and tk.ask > tk.bid
        plain = ib.placeOrder(c, MarketOrder("BUY", 1))
        early = ib.placeOrder(c, MarketOrder("BUY", 1, outsideRth=True))
        for _ in range(100):
            if early.orderStatus.status == "Filled":
                break
            await asyncio.sleep(0.02)
        assert early.orderStatus.status == "Filled" and plain.orderStatus.status == "PreSubmitted"
        ib.disconnect()


async def test_published_hours_start_on_the_exchanges_day_not_the_hosts() -> None:
    """At 20:30 New York time a UTC host's date is already the next day; the liquid hours must still
    cover the exchange's current day, or a client judging by them reads the open market closed."""
    evening = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).replace(hour=1, minute=30)  # 20:30 or 21:30 ET
    assert evening.astimezone(EASTERN).date() != evening.date()
    with running_simulator(market="open") as sim:
        sim.inject(_shift_to(evening))
        ib = await connect(sim, 1)
        [details] = await ib.reqContractDetailsAsync(Stock("SPY", "SMART", "USD"))
        hours = MarketHours()
        hours.update(details.liquidHours, details.timeZoneId)
        assert hours.source(evening) == "contract", details.liquidHours[:60]
        assert hours.is_open(evening)
        ib.disconnect()
