"""The paper guard keeps a live-looking account's orders from the Gateway; faults hit the bot's path."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request

import pytest
from ib_async import IB, LimitOrder, Stock
from proxyhelpers import post_fault, scrape, value

from proxy.faults import validate
from proxy.testing import running_proxy_app
from simulator.testing import running_simulator


async def _place(port: int, client_id: int) -> tuple[IB, list[tuple[int, int, str]]]:
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=client_id, timeout=5)
    [spy] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    trade = ib.placeOrder(spy, LimitOrder("BUY", 1, 1.0))
    for _ in range(100):
        if trade.orderStatus.status not in ("PendingSubmit", ""):
            break
        await asyncio.sleep(0.02)
    errors = [(trade.order.orderId, e.errorCode, e.message) for e in trade.log if e.errorCode]
    return ib, errors


@pytest.mark.parametrize(
    ("account", "paper_ports", "reason"),
    [("U1234567", None, "account_not_paper"), ("DU1234567", [4002], "port_not_paper")],
)
async def test_paper_guard_sends_no_order_to_a_live_looking_gateway(
    account: str, paper_ports: list[int] | None, reason: str
) -> None:
    with running_simulator(port=0, control_port=0, seed=1, account=account) as sim:
        gateway = {"paper_ports": paper_ports} if paper_ports else {}
        with running_proxy_app(sim.port, gateway=gateway) as app:
            ib, errors = await _place(app.port, 7)
            assert [code for _, code, _ in errors if code == 201] == [201]
            assert reason in next(text for _, code, text in errors if code == 201)
            await asyncio.sleep(0.3)
            assert sim.state()["orders"] == []  # nothing reached the Gateway
            m = scrape(app.metrics_port)
            assert value(m, "gatewatch_bot_orders_refused_total", reason=reason) == 1
            assert value(m, "gatewatch_bot_orders_placed_total") == 0
            assert ib.isConnected()
            ib.disconnect()


async def test_paper_account_orders_pass_the_guard() -> None:
    with running_simulator(port=0, control_port=0, seed=1) as sim, running_proxy_app(sim.port) as app:
        ib, errors = await _place(app.port, 7)
        assert not [e for e in errors if e[1] == 201]
        assert len(sim.state()["orders"]) == 1
        ib.disconnect()



@pytest.mark.parametrize(
    "body",
    [
        {"fault": "nope"},
        {"fault": "stall"},
        {"fault": "stall", "for": "1e999s"},
        {"fault": "latency", "ms": float("nan")},
        {"fault": "latency", "ms": 10**9},
        {"fault": "error", "code": 42},
        {"fault": "freeze"},
        {"fault": "error", "code": 1100, "for": "5s"},
    ],
)
def test_bad_fault_bodies_are_refused_with_the_reason(body: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError):
        validate(body)


async def test_faults_on_the_bots_path() -> None:
    with running_simulator(port=0, control_port=0, seed=1, tick_hz=20) as sim, running_proxy_app(sim.port) as app:
        assert app.control_port
        ib = IB()
        errors: list[int] = []
        ib.errorEvent += lambda req_id, code, text, contract: errors.append(code)
        await ib.connectAsync("127.0.0.1", app.port, clientId=7, timeout=5)
        [spy, qqq] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"), Stock("QQQ", "SMART", "USD"))
        spy_t, qqq_t = ib.reqMktData(spy), ib.reqMktData(qqq)
        await asyncio.sleep(0.5)
        # an injected Gateway error reaches the bot as the Gateway's own
        assert post_fault(app.control_port, {"fault": "error", "code": 1100})[0] == 200
        await asyncio.sleep(0.2)
        assert 1100 in errors
        # freeze one symbol: its ticks stop, the other's go on
        assert post_fault(app.control_port, {"fault": "freeze", "symbol": "SPY", "for": "1s"})[0] == 200
        await asyncio.sleep(0.1)
        spy_seen, qqq_seen = spy_t.time, qqq_t.time
        await asyncio.sleep(0.7)
        assert spy_t.time == spy_seen and qqq_t.time != qqq_seen
        m = scrape(app.metrics_port)
        assert value(m, "gatewatch_bot_tick_age_seconds", symbol="SPY") > 0.6
        assert value(m, "gatewatch_proxy_fault_active", fault="freeze") == 1
        await asyncio.sleep(0.6)
        assert spy_t.time != spy_seen  # expired by itself
        # latency: the bot's answers come late
        post_fault(app.control_port, {"fault": "latency", "ms": 300, "for": "5s"})
        t0 = time.monotonic()
        await asyncio.wait_for(ib.reqCurrentTimeAsync(), 5)
        assert time.monotonic() - t0 >= 0.3
        assert post_fault(app.control_port, {}, method="DELETE")[0] == 200
        # stall: nothing reaches the bot while it lasts
        post_fault(app.control_port, {"fault": "stall", "for": "1.5s"})
        await asyncio.sleep(0.4)  # a batch already delayed by the latency fault may still land
        before = qqq_t.time
        await asyncio.sleep(0.5)
        assert qqq_t.time == before
        await asyncio.sleep(1.0)
        assert qqq_t.time != before
        # cut the bot and refuse its reconnects for a while
        post_fault(app.control_port, {"fault": "disconnect", "for": "1s"})
        await asyncio.sleep(0.2)
        assert not ib.isConnected()
        again = IB()
        with pytest.raises((ConnectionError, OSError, TimeoutError, asyncio.TimeoutError)):
            await again.connectAsync("127.0.0.1", app.port, clientId=7, timeout=1)
        await asyncio.sleep(1.0)
        await again.connectAsync("127.0.0.1", app.port, clientId=7, timeout=5)
        m = scrape(app.metrics_port)
        assert value(m, "gatewatch_bot_disconnects_total", closed_by="proxy", client_id="7") == 1
        assert value(m, "gatewatch_proxy_connections_refused_total") >= 1
        state = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{app.control_port}/state").read())
        assert state["connections"][0]["client_id"] == 7
        again.disconnect()
        assert sim.state() is not None
