"""Server versions above 200 (simulator/protobuf.py): IBKR's own client advertises up to 226 and,
served 222 or 226, speaks protobuf both ways; ib_async and ib_insync on the same simulator still get 178
and 176. Every exchange below is protobuf on the wire (ibapi's *ProtoBuf callbacks fire)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from ib_async import Stock
from support.ibapi_client import ask_reference_and_streams, ibapi_client
from support.sim import connect

from simulator.testing import SimHandle, running_simulator

pytest.importorskip("ibapi.protobuf")


@pytest.fixture
def sim226() -> Iterator[SimHandle]:
    with running_simulator(port=0, control_port=0, seed=1, tick_hz=20, max_server_version=226) as handle:
        yield handle


@pytest.fixture
def sim222() -> Iterator[SimHandle]:
    """Configured below the client's 226: the client gets 222."""
    with running_simulator(port=0, control_port=0, seed=1, tick_hz=20, max_server_version=222) as handle:
        yield handle


def test_ibapi_at_222_speaks_protobuf_end_to_end(sim222: SimHandle) -> None:
    from ibapi.contract import Contract
    from ibapi.execution import ExecutionFilter
    from ibapi.order import Order

    spy = Contract()
    spy.symbol, spy.secType, spy.exchange, spy.currency = "SPY", "STK", "SMART", "USD"
    with ibapi_client(sim222.port, 31) as (c, rec):
        assert c.serverVersion() == 222
        rec.wait("managedAccountsProtoBuf")
        c.reqCurrentTime()
        rec.wait("currentTimeProtoBuf")
        c.reqContractDetails(2, spy)
        details = rec.wait("contractDetails")[1]
        assert details.contract.conId == 756733 and details.liquidHours and details.minTick == 0.01
        rec.wait("contractDataEndProtoBuf")
        c.reqMktData(3, spy, "", True, False, [])
        assert rec.wait("tickPrice", lambda a: a[1] == 1)[2] > 0
        rec.wait("tickSnapshotEndProtoBuf")
        c.reqAccountSummary(4, "All", "NetLiquidation,AccruedCash")
        assert rec.wait("accountSummary")[2] == "NetLiquidation"
        rec.wait("accountSummaryEndProtoBuf")
        oid = rec.wait("nextValidId")[0]
        order = Order()
        order.action, order.totalQuantity, order.orderType = "BUY", 2, "MKT"
        c.placeOrder(oid, spy, order)
        fill = rec.wait("execDetails", lambda a: a[2].orderId == oid)[2]
        assert fill.shares == 2 and fill.clientId == 31
        assert rec.wait("orderStatus", lambda a: a[0] == oid and a[1] == "Filled")[2] == 2
        rec.wait("commissionAndFeesReportProtoBuf")
        c.reqExecutions(5, ExecutionFilter())
        assert rec.wait("execDetails", lambda a: a[0] == 5)[2].orderId == oid
        rec.wait("executionDetailsEndProtoBuf")
        c.reqPositions()
        assert rec.wait("position")[2] == 2
        c.reqHistoricalData(6, spy, "", "1 D", "1 hour", "TRADES", 1, 1, False, [])
        assert rec.wait("historicalData")[0] == 6
        rec.wait("historicalDataEndProtoBuf")
        c.reqHistoricalData(7, spy, "20261130 10:50:00 US/Eastern", "1800 S", "1 hour", "TRADES", 1, 1, False, [])
        assert rec.wait("error", lambda a: a[0] == 7)[2] == 162
        c.reqCompletedOrders(False)
        assert rec.wait("completedOrder")[2].status == "Filled"
        c.reqSmartComponents(8, "a6")  # not modelled: refused, not ignored
        assert rec.wait("error", lambda a: a[0] == 8)[2] == 321


async def test_text_clients_keep_their_versions_beside_it(sim222: SimHandle) -> None:
    ib = await connect(sim222, 1)
    assert ib.client.serverVersion() == 178
    [c] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    assert c.conId == 756733
    ib.disconnect()
    ib_insync = pytest.importorskip("ib_insync")
    old = ib_insync.IB()
    await old.connectAsync("127.0.0.1", sim222.port, clientId=2, timeout=5)
    assert old.client.serverVersion() == 176
    old.disconnect()


def test_versions_outside_the_served_ranges_are_refused() -> None:
    from pydantic import ValidationError

    for bad in (190, 201, 227):
        with pytest.raises(ValidationError, match="max_server_version"):
            running_simulator(max_server_version=bad).__enter__()


def test_ibapi_at_226_gets_reference_data_and_streams(sim226: SimHandle) -> None:
    """The same requests as at 178 (test_sim_never_silent), as protobuf both ways, at the highest
    version IBKR's client advertises."""
    ask_reference_and_streams(sim226.port, 32, 226)
