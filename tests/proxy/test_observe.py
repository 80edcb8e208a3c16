"""What the proxy measures for a bot (ib_async through the proxy to the simulator), read from /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.request

from ib_async import IB, LimitOrder, MarketOrder, Stock
from proxyhelpers import assert_order_session, scrape, value

from proxy.testing import running_proxy_app
from simulator.testing import SimHandle


async def test_bot_session_metrics(sim: SimHandle) -> None:
    with running_proxy_app(sim.port, client_names={7: "spy-bot"}, unanswered_after="1s") as app:
        ib = IB()
        await ib.connectAsync("127.0.0.1", app.port, clientId=7, timeout=5)
        [spy] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
        ib.reqMktData(spy)
        await ib.reqHistoricalDataAsync(spy, "", "1 D", "1 hour", "TRADES", True)
        trade = ib.placeOrder(spy, MarketOrder("BUY", 1))
        resting = ib.placeOrder(spy, LimitOrder("BUY", 1, 1.0))
        for _ in range(150):
            if trade.orderStatus.status == "Filled" and resting.orderStatus.status == "Submitted":
                break
            await asyncio.sleep(0.02)
        resting.order.lmtPrice = 1.5
        ib.placeOrder(spy, resting.order)  # a modification
        await asyncio.sleep(0.2)
        ib.cancelOrder(resting.order)
        await asyncio.sleep(0.5)
        m = scrape(app.metrics_port)
        who = {"client_id": "7", "client_name": "spy-bot"}
        assert value(m, "gatewatch_bot_connected", **who) == 1
        assert value(m, "gatewatch_bot_server_version", **who) == 178
        assert value(m, "gatewatch_bot_connects_total", **who) == 1
        assert value(m, "gatewatch_bot_session_seconds", **who) > 0.5
        assert value(m, "gatewatch_bot_errors_total", code="2104", **{"class": "warning"}) == 1
        assert value(m, "gatewatch_bot_messages_sent_total", **who) > 5
        assert 5 < value(m, "gatewatch_bot_message_rate_peak", **who) <= 50
        for kind in ("contract_details", "historical_data", "market_data", "positions", "account"):
            assert value(m, "gatewatch_bot_request_first_answer_seconds_count", kind=kind) >= 1, kind
        assert_order_session(m, who)
        # a request the Gateway never answers is reported once it is older than unanswered_after
        ib.client.send(9, 8, 99999, 0, "NOSUCH", "STK", "", 0.0, "", "", "SMART", "", "USD", "", "", 0, "", "", "")
        sim.inject({"fault": "stall", "for": "3s"})
        ib.client.send(61, 1)  # reqPositions, held by the stalled Gateway
        await asyncio.sleep(1.3)
        m = scrape(app.metrics_port)
        assert value(m, "gatewatch_bot_requests_unanswered", kind="positions") == 1
        ib.disconnect()
        await asyncio.sleep(0.3)
        m = scrape(app.metrics_port)
        assert value(m, "gatewatch_bot_connected", **who) == 0
        assert value(m, "gatewatch_bot_disconnects_total", closed_by="bot", **who) == 1
        assert value(m, "gatewatch_bot_requests_unanswered") == 0
        assert value(m, "gatewatch_bot_tick_age_seconds") == 0  # no subscription left
        health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{app.metrics_port}/healthz").read())
        assert health["ok"] is True


async def test_client_id_collision_is_counted(sim: SimHandle) -> None:
    with running_proxy_app(sim.port) as app:
        first = IB()
        await first.connectAsync("127.0.0.1", app.port, clientId=5, timeout=5)
        second = IB()
        with contextlib.suppress(Exception):
            await second.connectAsync("127.0.0.1", app.port, clientId=5, timeout=2)
        await asyncio.sleep(0.3)
        m = scrape(app.metrics_port)
        assert value(m, "gatewatch_bot_client_id_collisions_total", client_id="5") == 1
        assert value(m, "gatewatch_bot_connected", client_id="5") == 1
        first.disconnect()
