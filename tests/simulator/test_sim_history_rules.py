"""Historical data as a Gateway serves it: legal requests only, 162 for an empty window, bars on the
exchange calendar, keepUpToDate without an end date; from ib_async and IBKR's ibapi."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from ib_async import IB, Stock
from support.ibapi_client import ibapi_client
from support.sim import connect

from simulator.testing import SimHandle, running_simulator

MONDAY_1050 = "20261130 10:50:00 US/Eastern"
SUNDAY = "20261129 12:00:00 US/Eastern"
AFTER_THANKSGIVING = "20261201 16:00:00 US/Eastern"  # Thu 26 Nov 2026 closed, Fri 27 closes 13:00


async def _hist(ib: IB, end: str, duration: str, bar: str, what: str = "TRADES", rth: bool = True,
                keep: bool = False) -> tuple[list[Any], list[tuple[int, str]]]:
    errors: list[tuple[int, str]] = []

    def on_error(rid: int, code: int, msg: str, c: Any) -> None:
        errors.append((code, msg))

    ib.errorEvent += on_error
    try:
        [spy] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
        bars = await asyncio.wait_for(ib.reqHistoricalDataAsync(spy, end, duration, bar, what, rth, 1, keep), 5)
    finally:
        ib.errorEvent -= on_error
    return list(bars), errors


async def _refused(ib: IB, end: str, duration: str, bar: str, what: str = "TRADES", keep: bool = False
                   ) -> tuple[int, str]:
    """Send the request below ib_async's request layer (it treats 321 as a warning and would keep
    waiting, as it would on a real Gateway) and return the error that answers it."""
    [spy] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    rid = ib.client.getReqId()
    got: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()

    def on_error(r: int, code: int, msg: str, c: Any) -> None:
        if r == rid and not got.done():
            got.set_result((code, msg))

    ib.errorEvent += on_error
    try:
        ib.client.reqHistoricalData(rid, spy, end, duration, bar, what, True, 1, keep, [])
        return await asyncio.wait_for(got, 3)
    finally:
        ib.errorEvent -= on_error


async def test_refusals_and_empty_window(ib: IB) -> None:
    bars, errors = await _hist(ib, MONDAY_1050, "1800 S", "1 hour")
    assert bars == [] and errors == [(162, "Historical Market Data Service error message:HMDS query returned no data")]
    for bad in ("7 mins", "1 hours", "45 secs"):
        assert (await _refused(ib, MONDAY_1050, "1 D", bad))[0] == 321, bad
    assert (await _refused(ib, MONDAY_1050, "1 D", "5 mins", what="PRICES"))[0] == 162
    code, text = await _refused(ib, MONDAY_1050, "1 D", "5 mins", keep=True)
    assert code == 321 and "live updates" in text
    bars, errors = await _hist(ib, MONDAY_1050, "1 D", "5 mins")
    assert len(bars) > 10 and errors == []  # and the session still serves


async def test_calendar_bars_skip_weekends_holidays_and_stop_at_early_close() -> None:
    with running_simulator(market="calendar", seed=3) as sim:
        ib = await connect(sim, 3)
        try:
            daily, _ = await _hist(ib, AFTER_THANKSGIVING, "8 D", "1 day")
            days = [b.date for b in daily]
            assert dt.date(2026, 11, 26) not in days
            assert all(d.weekday() < 5 for d in days) and len(days) == 8
            day_bars, _ = await _hist(ib, "20261127 23:00:00 US/Eastern", "1 D", "5 mins")
            assert day_bars[-1].date.astimezone(dt.timezone(dt.timedelta(hours=-5))).strftime("%H:%M") == "12:55"
            bars, errors = await _hist(ib, SUNDAY, "7200 S", "5 mins", rth=False)
            assert bars == [] and [c for c, _ in errors] == [162]
        finally:
            ib.disconnect()


def test_ibapi_sees_162_and_321(sim: SimHandle) -> None:
    from ibapi.contract import Contract

    spy = Contract()
    spy.symbol, spy.secType, spy.exchange, spy.currency = "SPY", "STK", "SMART", "USD"
    with ibapi_client(sim.port, 32) as (c, rec):
        c.reqHistoricalData(1, spy, MONDAY_1050, "1800 S", "1 hour", "TRADES", 1, 1, False, [])
        assert rec.wait("error", lambda a: a[0] == 1)[2] == 162
        c.reqHistoricalData(2, spy, MONDAY_1050, "1 D", "7 mins", "TRADES", 1, 1, False, [])
        assert rec.wait("error", lambda a: a[0] == 2)[2] == 321
        c.reqHistoricalData(3, spy, MONDAY_1050, "1 D", "5 mins", "TRADES", 1, 1, False, [])
        assert rec.wait("historicalDataEnd")[0] == 3
