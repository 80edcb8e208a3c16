"""The exporter against the simulator: metrics flow, and each fault moves the matching metrics."""

from __future__ import annotations

import asyncio
import json
import time

from support.exporter import RunningExporter


async def test_metrics_flow_and_healthz(exporter: RunningExporter) -> None:
    await exporter.wait_for("gatewatch_probe_success", lambda v: v == 1, probe="quotes", kind="passive")
    samples = await exporter.scrape()
    def get(name: str, **labels: str) -> float | None:
        return samples.get((name, frozenset(labels.items())))
    assert get("gatewatch_account_info", account="DU1234567", account_type="paper") == 1
    assert get("gatewatch_account_net_liquidation", currency="USD") == 1_000_000
    assert get("gatewatch_gateway_server_version") >= 157  # type: ignore[operator]
    assert get("gatewatch_market_data_lines") == 3
    for symbol in ("SPY", "QQQ", "IWM"):
        assert get("gatewatch_quote_age_seconds", symbol=symbol) < 2  # type: ignore[operator]
        assert get("gatewatch_quote_sane", symbol=symbol) == 1
    assert get("gatewatch_data_farm_connected", farm="usfarm", type="market") == 1
    assert get("gatewatch_process_resident_memory_bytes", process="exporter") > 10e6  # type: ignore[operator]
    status, body = await exporter.get("/healthz")
    health = json.loads(body)
    assert status == 200 and health["status"] == "ok"
    assert health["gateway"]["connected"] is True and health["gateway"]["account"] == "DU1234567"
    assert health["probes"]["quotes"]["success"] is True


async def test_disconnect_detected_at_once_and_recovered(sim, exporter: RunningExporter) -> None:
    await exporter.wait_for("gatewatch_probe_success", lambda v: v == 1, probe="quotes", kind="passive")
    sim.inject({"fault": "disconnect", "for": "1.5s"})
    started = time.monotonic()
    while exporter.app.session.connected:
        assert time.monotonic() - started < 10, "connected gauge never dropped after the disconnect"
        await asyncio.sleep(0.005)
    assert await exporter.value("gatewatch_gateway_disconnects_total") == 1
    assert await exporter.value("gatewatch_market_data_lines") == 0
    status, body = await exporter.get("/healthz")
    assert status == 200 and json.loads(body)["gateway"]["connected"] is False
    await exporter.wait_for("gatewatch_probe_success", lambda v: v == 0, probe="connection", kind="passive")
    # the simulator refuses for 1.5 s ("restart"); the exporter backs off, retries, resubscribes
    await exporter.wait_for("gatewatch_gateway_connected", lambda v: v == 1, timeout=10)
    assert await exporter.value("gatewatch_gateway_connects_total") == 2
    assert await exporter.value("gatewatch_gateway_reconnect_attempts_total") >= 1  # type: ignore[operator]
    await exporter.wait_for("gatewatch_market_data_lines", lambda v: v == 3)
    await exporter.wait_for("gatewatch_probe_success", lambda v: v == 1, probe="quotes", kind="passive")


async def test_frozen_symbol_shows_growing_age(sim, exporter: RunningExporter) -> None:
    await exporter.wait_for("gatewatch_probe_success", lambda v: v == 1, probe="quotes", kind="passive")
    sim.inject({"fault": "freeze", "symbol": "SPY", "for": "6s"})
    await exporter.wait_for("gatewatch_quote_age_seconds", lambda v: v > 2.5, symbol="SPY")
    assert await exporter.value("gatewatch_quote_age_seconds", symbol="QQQ") < 2  # type: ignore[operator]
    assert await exporter.value("gatewatch_probe_success", probe="quotes", kind="passive") == 1  # rules judge
    sim.clear_faults()
    await exporter.wait_for("gatewatch_quote_age_seconds", lambda v: v < 1, symbol="SPY")


async def test_missing_bid_ask_marks_quote_insane(sim, exporter: RunningExporter) -> None:
    await exporter.wait_for("gatewatch_quote_sane", lambda v: v == 1, symbol="IWM")
    sim.inject({"fault": "drop_bid_ask", "symbol": "IWM", "for": "5s"})
    await exporter.wait_for("gatewatch_quote_sane", lambda v: v == 0, symbol="IWM")
    assert await exporter.value("gatewatch_quote_field_present", symbol="IWM", field="bid") == 0
    assert await exporter.value("gatewatch_quote_sane", symbol="SPY") == 1
    assert await exporter.value("gatewatch_probe_success", probe="quotes", kind="passive") == 1  # rules judge


async def test_clock_shift_moves_the_skew_estimate(sim, exporter: RunningExporter) -> None:
    await exporter.wait_for("gatewatch_clock_skew_uncertainty_seconds", lambda v: v < 0.6)
    before = await exporter.value("gatewatch_clock_skew_seconds")
    assert before is not None and abs(before) < 0.6
    sim.inject({"fault": "clock_shift", "ms": 3000})  # the server's clock runs 3 s ahead of ours
    skew = await exporter.wait_for("gatewatch_clock_skew_seconds", lambda v: abs(v + 3) < 0.6, timeout=12)
    assert skew < -2.4


async def test_competing_session_and_connectivity_loss(sim, exporter: RunningExporter) -> None:
    await exporter.wait_for("gatewatch_probe_success", lambda v: v == 1, probe="quotes", kind="passive")
    sim.inject({"fault": "competing_session", "for": "2s"})
    await exporter.wait_for("gatewatch_gateway_competing_session", lambda v: v == 1)
    assert await exporter.value("gatewatch_api_errors_total", code="10197", **{"class": "critical"}) >= 1  # type: ignore[operator]
    await exporter.wait_for("gatewatch_gateway_competing_session", lambda v: v == 0, timeout=8)

    connected_since = await exporter.value("gatewatch_gateway_connected_since_timestamp_seconds")
    assert connected_since and await exporter.value("gatewatch_gateway_linked_since_timestamp_seconds") == \
        connected_since  # no loss yet on this connection: linked since it was made
    # created at 0 before any loss, so the first loss is an increment ib_link_held sees
    assert await exporter.value("gatewatch_gateway_connectivity_losses_total") == 0
    injected = time.time()
    sim.inject({"fault": "connectivity_lost", "for": "1.5s", "restore": "data_lost"})
    await exporter.wait_for("gatewatch_gateway_connectivity_lost", lambda v: v == 1)
    assert await exporter.value("gatewatch_gateway_connectivity_losses_total") == 1
    assert await exporter.value("gatewatch_gateway_linked_since_timestamp_seconds") == 0
    await exporter.wait_for("gatewatch_probe_success", lambda v: v == 0, probe="connection", kind="passive")
    await exporter.wait_for("gatewatch_gateway_connectivity_lost", lambda v: v == 0, timeout=8)
    # the socket never dropped; the restoration (1101) is the new start quotes are judged from
    assert await exporter.value("gatewatch_gateway_connected_since_timestamp_seconds") == connected_since
    linked = await exporter.value("gatewatch_gateway_linked_since_timestamp_seconds")
    assert linked is not None and injected + 1.5 <= linked <= time.time()
    assert await exporter.value("gatewatch_api_errors_total", code="1101", **{"class": "warning"}) == 1
    assert await exporter.value("gatewatch_gateway_connectivity_losses_total") == 1, "one loss, counted once"
    # 1101 means the market data subscriptions are gone: quotes must flow again after resubscribing
    await exporter.wait_for("gatewatch_probe_success", lambda v: v == 1, probe="quotes", kind="passive", timeout=8)


async def test_pacing_errors_are_counted_and_survived(sim, exporter: RunningExporter) -> None:
    sim.inject({"fault": "pacing", "count": 2})
    await exporter.wait_for("gatewatch_api_errors_total", lambda v: v == 2, code="100", **{"class": "warning"})
    sim.inject({"fault": "malformed"})
    await asyncio.sleep(1.0)
    assert await exporter.value("gatewatch_gateway_connected") == 1
    await exporter.wait_for("gatewatch_probe_success", lambda v: v == 1, probe="heartbeat", kind="passive")


async def test_manual_trade_shows_as_ledger_drift(sim, exporter: RunningExporter) -> None:
    await exporter.wait_for("gatewatch_probe_success", lambda v: v == 1, probe="reconciliation", kind="passive")
    sim.inject({"fault": "manual_trade", "symbol": "SPY", "qty": 5, "price": 550.0, "report": "none"})
    await exporter.wait_for("gatewatch_position_drift", lambda v: v == 5, symbol="SPY", source="ledger", timeout=8)
    assert await exporter.value("gatewatch_reconciliation_discrepancies_total", source="ledger") >= 1  # type: ignore[operator]
    await exporter.wait_for("gatewatch_gateway_position", lambda v: v == 5, symbol="SPY", sec_type="STK",
                            con_id=str(next(p["conId"] for p in sim.state()["positions"] if p["symbol"] == "SPY")))
    assert await exporter.value("gatewatch_probe_success", probe="reconciliation", kind="passive") == 1  # rules judge
    await exporter.wait_for("gatewatch_position_exposure_ratio", lambda v: 0 < v < 0.01, symbol="SPY")
