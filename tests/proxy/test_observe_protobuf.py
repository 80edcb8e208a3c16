"""What the proxy measures for a bot that speaks protobuf (IBKR's own client at server version 226).

The same session as test_observe.py's ib_async bot (text protocol at 178), from unmodified ibapi
(EClient/EWrapper) through the proxy to the simulator, which serves 226: every request and answer
after the hello is one of IBKR's protobuf messages. The metrics must come out as they do for the
text bot (one measurement code, two decoders), the bytes must cross unchanged (taps on both
sides), and the paper guard and the faults must act on protobuf frames as on text ones.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from ibapi.contract import Contract
from ibapi.order import Order
from ibapi.order_cancel import OrderCancel
from proxyhelpers import assert_order_session, post_fault, scrape, tap, value, wait_until
from support.ibapi_client import Recorder, ibapi_client

from proxy.testing import running_proxy_app
from simulator.testing import running_simulator

SERVED = 226


def _stock(symbol: str) -> Contract:
    c = Contract()
    c.symbol, c.secType, c.exchange, c.currency = symbol, "STK", "SMART", "USD"
    return c


def _order(action: str, kind: str, price: float | None = None, account: str = "") -> Order:
    o = Order()
    o.action, o.totalQuantity, o.orderType, o.account = action, 1, kind, account
    if price is not None:
        o.lmtPrice = price
    return o


def _status(rec: Recorder, oid: int, status: str) -> tuple[Any, ...]:
    return rec.wait("orderStatus", lambda a: a[0] == oid and a[1] == status)


def test_protobuf_bot_session_metrics() -> None:
    spy = _stock("SPY")
    with (
        running_simulator(port=0, control_port=0, seed=1, tick_hz=20) as sim,
        tap(sim.port) as far,
        running_proxy_app(far.port, client_names={7: "pb-bot"}, unanswered_after="1s") as app,
        tap(app.port) as near,
    ):
        with ibapi_client(near.port, 7) as (c, rec):
            assert c.serverVersion() == SERVED
            c.reqContractDetails(1, spy)
            rec.wait("contractDetailsEnd", lambda a: a[0] == 1)
            c.reqMktData(2, spy, "", False, False, [])
            rec.wait("tickPrice", lambda a: a[0] == 2)
            c.reqHistoricalData(3, spy, "", "1 D", "1 hour", "TRADES", 1, 1, False, [])
            rec.wait("historicalDataEnd", lambda a: a[0] == 3)
            c.reqPositions()
            rec.wait("positionEnd")
            c.reqAccountUpdates(True, "")
            rec.wait("accountDownloadEnd")
            oid = rec.wait("nextValidId")[0]
            c.placeOrder(oid, spy, _order("BUY", "MKT"))
            c.placeOrder(oid + 1, spy, _order("BUY", "LMT", 1.0))
            _status(rec, oid, "Filled")
            _status(rec, oid + 1, "Submitted")
            c.placeOrder(oid + 1, spy, _order("BUY", "LMT", 1.5))  # a modification
            time.sleep(0.2)
            c.cancelOrder(oid + 1, OrderCancel())
            _status(rec, oid + 1, "Cancelled")
            c.reqSmartComponents(4, "a6")  # not served: error 321 for request 4
            assert rec.wait("error", lambda a: a[0] == 4)[2] == 321
            time.sleep(0.3)
            m = scrape(app.metrics_port)
            who = {"client_id": "7", "client_name": "pb-bot"}
            assert value(m, "gatewatch_bot_connected", **who) == 1
            assert value(m, "gatewatch_bot_server_version", **who) == SERVED
            assert value(m, "gatewatch_bot_errors_total", code="2104", **{"class": "warning"}) == 1
            assert value(m, "gatewatch_bot_errors_total", code="321", **{"class": "request"}) == 1
            for kind in ("contract_details", "historical_data", "market_data", "positions", "account"):
                assert value(m, "gatewatch_bot_request_first_answer_seconds_count", kind=kind, **who) == 1, kind
            assert_order_session(m, who)
            assert value(m, "gatewatch_proxy_frames_undecoded_total", reason="malformed") == 0
            # a request the Gateway never answers is reported once it is older than unanswered_after
            sim.inject({"fault": "stall", "for": "3s"})
            c.reqContractDetails(5, _stock("QQQ"))
            time.sleep(1.3)
            m = scrape(app.metrics_port)
            assert value(m, "gatewatch_bot_requests_unanswered", kind="contract_details") == 1
            # Quiet the session before the bot leaves: what the Gateway sends once the bot has gone
            # (the ticks the stall held, a tick in flight) cannot reach it, and the byte comparison
            # below is about what the Gateway sent the bot. The ticks stop, the stall is lifted, and
            # an answer queued after both proves everything queued before it reached the bot.
            c.cancelMktData(2)
            sim.clear_faults()
            c.reqCurrentTime()
            rec.wait("currentTime", timeout=10)
        assert wait_until(lambda: near.closed == 2 and far.closed == 2)
        m = scrape(app.metrics_port)
        assert value(m, "gatewatch_bot_connected", client_id="7") == 0
        assert value(m, "gatewatch_bot_disconnects_total", closed_by="bot", client_id="7") == 1
    assert near.up[0] == far.up[0]  # the bot's requests reached the Gateway unchanged
    # every answer reached the bot unchanged and in order, up to its leaving: whatever a stream still
    # subscribed (account updates) sent after the bot closed had nobody to reach, hence a prefix
    received, sent = bytes(near.down[0]), bytes(far.down[0])
    assert len(received) > 1000 and sent.startswith(received)


@pytest.mark.parametrize(
    ("sim_account", "order_account", "reason"),
    [("U1234567", "", "account_not_paper"), ("DU1234567", "U7654321", "account_unknown")],
)
def test_paper_guard_reads_protobuf_orders(sim_account: str, order_account: str, reason: str) -> None:
    """A live-looking Gateway, and a paper one with the order's own account field live: nothing sent."""
    with (
        running_simulator(port=0, control_port=0, seed=1, account=sim_account) as sim,
        running_proxy_app(sim.port) as app,
        ibapi_client(app.port, 8) as (c, rec),
    ):
        oid = rec.wait("nextValidId")[0]
        c.placeOrder(oid, _stock("SPY"), _order("BUY", "LMT", 1.0, account=order_account))
        err = rec.wait("error", lambda a: a[0] == oid)
        assert err[2] == 201 and reason in err[3]
        # written as a Gateway writes errors at 226: IBKR's ErrorMessage
        assert rec.wait("errorProtoBuf", lambda a: a[0].id == oid)[0].errorCode == 201
        time.sleep(0.3)
        assert sim.state()["orders"] == []  # nothing reached the Gateway
        m = scrape(app.metrics_port)
        assert value(m, "gatewatch_bot_orders_refused_total", reason=reason, client_id="8") == 1
        assert value(m, "gatewatch_bot_orders_placed_total") == 0


def test_faults_on_a_protobuf_bots_path() -> None:
    """An injected error reaches ibapi as a Gateway error; freezing SPY stops its protobuf ticks only."""
    with (
        running_simulator(port=0, control_port=0, seed=1, tick_hz=20) as sim,
        running_proxy_app(sim.port) as app,
        ibapi_client(app.port, 9) as (c, rec),
    ):
        assert app.control_port
        c.reqMktData(1, _stock("SPY"), "", False, False, [])
        c.reqMktData(2, _stock("QQQ"), "", False, False, [])
        rec.wait("tickPrice", lambda a: a[0] == 1)
        rec.wait("tickPrice", lambda a: a[0] == 2)
        assert post_fault(app.control_port, {"fault": "error", "code": 1100})[0] == 200
        assert rec.wait("error", lambda a: a[2] == 1100)[0] == -1
        assert rec.wait("errorProtoBuf", lambda a: a[0].errorCode == 1100)  # as a Gateway at 226 writes it
        assert post_fault(app.control_port, {"fault": "freeze", "symbol": "SPY", "for": "1s"})[0] == 200
        time.sleep(0.15)
        rec.errors()  # drain what arrived before the freeze took hold
        mark = len(rec.seen)
        time.sleep(0.6)
        rec.errors()
        ticked = {a[0] for n, a in rec.seen[mark:] if n in ("tickPrice", "tickSize")}
        assert ticked == {2}
        m = scrape(app.metrics_port)
        assert value(m, "gatewatch_bot_tick_age_seconds", symbol="SPY") > 0.5
        time.sleep(0.5)
        rec.errors()
        assert any(n == "tickPrice" and a[0] == 1 for n, a in rec.seen[mark:])  # the freeze expired
