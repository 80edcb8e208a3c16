"""The proxy is transparent at a protobuf server version (issue 12 "Transparent"), from IBKR's own
client: ibapi advertises up to 226 and the simulator serves 226 by default, so every message after
the hello has a 4-byte id and requests and answers are protobuf.

Two recording taps sit on either side of the proxy (ibapi -> tap -> proxy -> tap -> simulator): the
bytes must be identical in both directions. And what ibapi decodes through the proxy must equal what
it decodes on a direct connection to the same simulator, except the error timestamps protobuf
error messages carry (the script asks nothing priced by the moving quote stream).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import pytest
from proxyhelpers import tap, wait_until
from support.ibapi_client import ibapi_client

from proxy.testing import running_proxy_app
from simulator.testing import SimHandle, running_simulator

pytest.importorskip("ibapi.protobuf")
SERVED = 226


@pytest.fixture
def sim() -> Iterator[SimHandle]:
    """No version option: the default serves 226 to a client that advertises it."""
    with running_simulator(port=0, control_port=None, seed=3, tick_hz=1) as handle:
        yield handle


def _normal(name: str, args: tuple[Any, ...]) -> tuple[str, str]:
    """A callback as comparable text; an error's time (ibapi: reqId, errorTime, code, text, json)
    and the errorTime field of the protobuf error are the moment it was sent."""
    if name == "error":
        args = (args[0], *args[2:])
    return name, repr([_text(a) for a in args])


def _text(a: Any) -> Any:
    """Values by content (ibapi's Object repr carries the object's id)."""
    from ibapi.object_implem import Object

    if isinstance(a, list | tuple):
        return [_text(x) for x in a]
    if hasattr(a, "DESCRIPTOR"):  # a protobuf message
        if "errorTime" in a.DESCRIPTOR.fields_by_name:
            a = type(a).FromString(a.SerializeToString())
            a.ClearField("errorTime")
        return str(a)
    if type(a).__str__ is Object.__str__:
        return {k: _text(v) for k, v in vars(a).items()}
    return str(a)


def _session(port: int, client_id: int) -> list[tuple[str, str]]:
    """Reference data, fixed-window history, an empty window (162), account summary, completed
    orders and a refused request: every answer is a function of the seed, not of the moment."""
    from ibapi.contract import Contract

    spy = Contract()
    spy.symbol, spy.secType, spy.exchange, spy.currency = "SPY", "STK", "SMART", "USD"
    with ibapi_client(port, client_id) as (c, rec):
        assert c.serverVersion() == SERVED
        c.reqContractDetails(1, spy)
        rec.wait("contractDetailsEnd", lambda a: a[0] == 1)
        c.reqHistoricalData(2, spy, "20261125 16:00:00 US/Eastern", "2 D", "1 hour", "MIDPOINT", 1, 1, False, [])
        rec.wait("historicalDataEnd", lambda a: a[0] == 2)
        c.reqHistoricalData(3, spy, "20261130 10:50:00 US/Eastern", "1800 S", "1 hour", "TRADES", 1, 1, False, [])
        assert rec.wait("error", lambda a: a[0] == 3)[2] == 162
        c.reqAccountSummary(4, "All", "AccountType,TotalCashValue")
        rec.wait("accountSummaryEnd", lambda a: a[0] == 4)
        c.reqMatchingSymbols(5, "QQ")
        rec.wait("symbolSamples", lambda a: a[0] == 5)
        c.reqMarketRule(26)
        rec.wait("marketRule", lambda a: a[0] == 26)
        c.reqCompletedOrders(True)
        rec.wait("completedOrdersEnd")
        c.reqSmartComponents(6, "a6")  # not modelled: refused with 321
        assert rec.wait("error", lambda a: a[0] == 6)[2] == 321
        rec.errors()  # drain what is still queued
        return [_normal(n, a) for n, a in rec.seen]


def _ids(stream: bytes) -> list[int]:
    """Message ids of the server -> client frames after the text hello (4-byte ids from 201)."""
    ids, pos = [], 0
    while pos + 4 <= len(stream):
        (size,) = struct.unpack(">I", stream[pos : pos + 4])
        body = stream[pos + 4 : pos + 4 + size]
        if pos:  # the first frame is the hello: version and time as text
            ids.append(struct.unpack(">I", body[:4])[0])
        pos += 4 + size
    return ids


def test_ibapi_at_226_through_the_proxy_byte_exact_and_as_direct(sim: SimHandle) -> None:
    direct = _session(sim.port, 41)
    with tap(sim.port) as far, running_proxy_app(far.port) as proxy, tap(proxy.port) as near:
        relayed = _session(near.port, 42)
        assert wait_until(lambda: near.closed == 2 and far.closed == 2)
    assert near.up[0] == far.up[0]  # ibapi's requests reach the Gateway unchanged
    assert near.down[0] == far.down[0]  # and every answer reaches ibapi unchanged
    ids = _ids(bytes(near.down[0]))
    assert {i for i in ids if i > 200} >= {204, 210, 217}  # protobuf errors, contract details, history
    assert relayed == direct
    names = [n for n, _ in direct]
    assert "contractDataProtoBuf" in names and "historicalDataProtoBuf" in names and len(names) > 40
