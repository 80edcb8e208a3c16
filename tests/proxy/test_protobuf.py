"""Server versions above 200: message ids become 4-byte integers and ids above 200 carry protobuf.

A scripted Gateway plays server version 201 here (the simulator speaks 178 and 213-226, not 201):
the proxy must relay every byte unchanged and decode the text messages and IBKR's protobuf ones
alike (a protobuf message it does not read is counted). IBKR's own client at 226 against the
simulator: test_relay_protobuf_ibapi.py (bytes) and test_observe_protobuf.py (measurements).
"""

from __future__ import annotations

import socket
import struct
import threading

import pytest
from proxyhelpers import frame, read_exact, scrape, tap, value, wait_until

from proxy.testing import running_proxy_app
from simulator.testing import running_simulator


def raw(msg_id: int, body: bytes) -> bytes:
    payload = struct.pack(">I", msg_id) + body
    return struct.pack(">I", len(payload)) + payload


def _place_order(order_id: int) -> bytes:
    """IBKR's PlaceOrderRequest for a SPY order (ibapi's generated classes)."""
    from simulator.protobuf import message_class

    msg = message_class("PlaceOrderRequest")(orderId=order_id)
    msg.contract.symbol, msg.contract.secType = "SPY", "STK"
    msg.order.action, msg.order.totalQuantity, msg.order.orderType = "BUY", "1", "MKT"
    return bytes(msg.SerializeToString())


def test_protobuf_frames_are_relayed_byte_exact_and_counted() -> None:
    hello = frame(["201", "20260101 09:30:00 EST"])
    to_bot = (
        raw(15, b"1\0DU1234567\0")  # managedAccounts, text after the integer id
        + raw(9, b"1\0" + b"42\0")  # nextValidId
        + raw(249, bytes(range(256)))  # a protobuf message the proxy does not read: opaque bytes
        + raw(201, b"\x0a\x05ab")  # a tickPrice IBKR's class cannot parse (truncated): counted, relayed
        + raw(4, b"-1\x002104\0Market data farm connection is OK:usfarm\0\0" + b"1767000000000\0")
    )
    start_api = raw(71, b"2\x007\0\0")
    order = raw(203, _place_order(42))  # a protobuf placeOrder
    opening = b"API\0" + struct.pack(">I", 9) + b"v100..201"
    got: dict[str, bytes] = {}
    server = socket.create_server(("127.0.0.1", 0))

    def gateway() -> None:
        conn, _ = server.accept()
        conn.settimeout(5)
        got["opening"] = read_exact(conn, len(opening))
        conn.sendall(hello)
        got["start_api"] = read_exact(conn, len(start_api))
        conn.sendall(to_bot)
        got["order"] = read_exact(conn, len(order))
        conn.close()

    threading.Thread(target=gateway, daemon=True).start()
    with running_proxy_app(server.getsockname()[1]) as app:
        bot = socket.create_connection(("127.0.0.1", app.port), timeout=5)
        bot.sendall(opening)
        assert read_exact(bot, len(hello)) == hello
        bot.sendall(start_api + order)  # an order before the Gateway named its accounts: refused
        (size,) = struct.unpack(">I", read_exact(bot, 4))
        refusal = read_exact(bot, size)
        assert refusal[:4] == struct.pack(">I", 4) and refusal[4:].startswith(b"42\x00201\x00")  # error 201, order 42
        assert b"account_unknown" in refusal
        assert read_exact(bot, len(to_bot)) == to_bot  # unchanged, in order
        bot.sendall(order)  # accounts known (paper), paper port: this one goes through
        assert wait_until(lambda: "order" in got)
        assert got == {"opening": opening, "start_api": start_api, "order": order}
        m = scrape(app.metrics_port)
        assert value(m, "gatewatch_bot_server_version", client_id="7") == 201
        assert value(m, "gatewatch_proxy_frames_undecoded_total", direction="to_bot", reason="protobuf") == 1
        assert value(m, "gatewatch_proxy_frames_undecoded_total", direction="to_gateway", reason="protobuf") == 0
        assert value(m, "gatewatch_proxy_frames_undecoded_total", direction="to_bot", reason="malformed") == 1
        assert value(m, "gatewatch_bot_orders_placed_total", client_id="7") == 1  # the one that went through
        assert value(m, "gatewatch_bot_errors_total", code="2104", client_id="7") == 1  # text decoded at 201 too
        assert value(m, "gatewatch_bot_orders_refused_total", reason="account_unknown") == 1
        bot.close()
    server.close()


def test_ibapi_at_222_through_the_proxy_is_byte_identical_and_trades_on_paper() -> None:
    """IBKR's own client, served protobuf by the simulator: relayed unchanged, accounts, errors and orders read."""
    pytest.importorskip("ibapi.protobuf")
    from ibapi.contract import Contract
    from ibapi.order import Order
    from support.ibapi_client import ibapi_client

    spy = Contract()
    spy.symbol, spy.secType, spy.exchange, spy.currency = "SPY", "STK", "SMART", "USD"
    with (
        running_simulator(port=0, control_port=0, seed=1, max_server_version=222) as sim,
        tap(sim.port) as far,
        running_proxy_app(far.port) as app,
        tap(app.port) as near,
    ):
        with ibapi_client(near.port, 31) as (c, rec):
            assert c.serverVersion() == 222
            c.reqContractDetails(2, spy)
            rec.wait("contractDataEndProtoBuf")
            oid = rec.wait("nextValidId")[0]
            order = Order()
            order.action, order.totalQuantity, order.orderType = "BUY", 1, "MKT"
            c.placeOrder(oid, spy, order)
            assert rec.wait("orderStatus", lambda a: a[0] == oid and a[1] == "Filled")[2] == 1
        m = scrape(app.metrics_port)
        assert value(m, "gatewatch_bot_server_version", client_id="31") == 222
        assert value(m, "gatewatch_bot_errors_total", code="2104", client_id="31") == 1  # a protobuf error read
        assert value(m, "gatewatch_bot_orders_refused_total", client_id="31") == 0  # accounts read: paper
        assert value(m, "gatewatch_bot_orders_filled_total", client_id="31") == 1  # protobuf order lifecycle read
        assert len(sim.state()["orders"]) == 1
        assert wait_until(lambda: near.closed == 2 and far.closed == 2)
        assert bytes(near.up[0]) == bytes(far.up[0])
        got, sent = bytes(near.down[0]), bytes(far.down[0])
        assert len(got) > 500 and sent[: len(got)] == got
