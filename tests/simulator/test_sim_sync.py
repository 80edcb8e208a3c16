"""Connection, sync, account data, contracts, option chains and version negotiation."""

from __future__ import annotations

import asyncio
import time

import pytest
from ib_async import IB, Option, Stock
from support.sim import connect, raw_hello, read_msg

from simulator.testing import SimHandle, running_simulator


async def test_connect_sync_is_fast_and_complete(sim: SimHandle) -> None:
    ib = await connect(sim, 7, raiseSyncErrors=True)  # raises unless every sync end marker arrived
    assert ib.managedAccounts() == ["DU1234567"]
    assert ib.client.serverVersion() == 178
    tags = {v.tag: v for v in ib.accountValues()}
    for tag in (
        "NetLiquidation",
        "TotalCashValue",
        "BuyingPower",
        "AvailableFunds",
        "DayTradesRemaining",
        "GrossPositionValue",
        "EquityWithLoanValue",
        "InitMarginReq",
        "MaintMarginReq",
        "AccountType",
    ):
        assert tag in tags
    assert tags["NetLiquidation"].currency == "USD"
    assert float(tags["NetLiquidation"].value) == pytest.approx(1_000_000)
    assert sim.state()["clients"] == [7]
    ib.disconnect()


async def test_readonly_connect(sim: SimHandle) -> None:
    ib = IB()
    await ib.connectAsync("127.0.0.1", sim.port, clientId=3, timeout=5, readonly=True, raiseSyncErrors=True)
    assert ib.isConnected()
    ib.disconnect()


async def test_live_account_id() -> None:
    with running_simulator(account="U1234567", seed=2) as live:
        ib = await connect(live, 1)
        assert ib.managedAccounts() == ["U1234567"]
        ib.disconnect()


async def test_current_time_once_per_second(ib: IB) -> None:
    t = await asyncio.wait_for(ib.reqCurrentTimeAsync(), 2)
    assert abs(t.timestamp() - time.time()) < 2
    # A second request within the same server second is never answered.
    now = time.time()
    await asyncio.sleep(1.02 - (now % 1))
    await asyncio.wait_for(ib.reqCurrentTimeAsync(), 2)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ib.reqCurrentTimeAsync(), 0.3)


async def test_account_summary(ib: IB) -> None:
    rows = await asyncio.wait_for(ib.accountSummaryAsync(), 3)
    tags = {r.tag: r.value for r in rows}
    assert float(tags["BuyingPower"]) > 0
    assert tags["AccountType"] == "INDIVIDUAL"


async def test_duplicate_client_id_gets_326(sim: SimHandle) -> None:
    first = await connect(sim, 9)
    s = raw_hello(sim.port, client_id=9)
    assert read_msg(s)[0] == "178"
    msg = read_msg(s)
    assert msg[:4] == ["4", "2", "-1", "326"]
    assert "already in use" in msg[4]
    s.settimeout(3)
    assert s.recv(10) == b""  # closed by the server
    assert first.isConnected()
    first.disconnect()


async def test_contract_details_stock_and_unknown(ib: IB) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda rid, code, msg, c: errors.append(code)
    [cd] = await ib.reqContractDetailsAsync(Stock("SPY", "SMART", "USD"))
    assert cd.contract.conId == 756733
    assert cd.contract.primaryExchange == "ARCA"
    assert cd.minTick == 0.01 and cd.timeZoneId == "US/Eastern" and cd.liquidHours
    [q] = await ib.qualifyContractsAsync(Stock("QQQ", "SMART", "USD"))
    assert q.conId == 320227571 and q.primaryExchange == "NASDAQ"
    assert await ib.reqContractDetailsAsync(Stock("NOPE", "SMART", "USD")) == []
    assert 200 in errors


async def test_option_chain_union_needs_confirmation(ib: IB) -> None:
    [spy] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    chains = await ib.reqSecDefOptParamsAsync("SPY", "", "STK", spy.conId)
    smart = next(c for c in chains if c.exchange == "SMART")
    exps = sorted(smart.expirations)
    assert len(exps) >= 10
    near = exps[0]
    near_details = await ib.reqContractDetailsAsync(Option("SPY", near, 0, "C", "SMART"))
    near_strikes = {d.contract.strike for d in near_details}
    assert near_strikes and near_strikes < set(smart.strikes)  # union has strikes the near expiry lacks
    missing = sorted(set(smart.strikes) - near_strikes)[0]
    assert await ib.reqContractDetailsAsync(Option("SPY", near, missing, "C", "SMART")) == []
    k = sorted(near_strikes)[len(near_strikes) // 2]
    [d] = await ib.reqContractDetailsAsync(Option("SPY", near, k, "P", "SMART"))
    assert d.contract.multiplier == "100" and d.contract.right == "P"


async def test_qqq_weekly_fridays(ib: IB) -> None:
    chains = await ib.reqSecDefOptParamsAsync("QQQ", "", "STK", 320227571)
    import datetime as dt

    days = {dt.datetime.strptime(e, "%Y%m%d").weekday() for e in chains[0].expirations}
    assert days == {4}


async def test_negotiates_176_for_older_client(sim: SimHandle) -> None:
    s = raw_hello(sim.port, versions=b"v157..176", client_id=4)
    hello = read_msg(s)
    assert hello[0] == "176" and len(hello) == 2
    msgs = [read_msg(s) for _ in range(5)]
    assert ["15", "1", "DU1234567"] in msgs
    err = next(m for m in msgs if m[0] == "4")
    assert len(err) == 6  # advancedOrderRejectJson present (>= 166)
    s.close()


async def test_refuses_versions_out_of_range(sim: SimHandle) -> None:
    for versions in (b"v180..200", b"v100..150"):
        s = raw_hello(sim.port, versions=versions, client_id=None)
        s.settimeout(3)
        assert s.recv(100) == b""
        s.close()
    ib = await connect(sim, 2)
    assert ib.isConnected()
    ib.disconnect()
