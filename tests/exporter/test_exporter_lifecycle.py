"""The exporter's life around the Gateway: absent at start, stalled, paced; it never stops serving."""

from __future__ import annotations

import asyncio

from support.exporter import fast_config, running_exporter

from gatewatch.localstack.net import free_port
from simulator import running_simulator


async def test_gateway_absent_at_start_then_appears() -> None:
    port = free_port()
    async with running_exporter(fast_config(port)) as exporter:
        await exporter.wait_for("gatewatch_gateway_reconnect_attempts_total", lambda v: v >= 2, timeout=8)
        assert await exporter.value("gatewatch_gateway_connected") == 0
        assert await exporter.value("gatewatch_probe_success", probe="connection", kind="passive") == 0
        assert await exporter.value("gatewatch_probe_success", probe="process", kind="passive") == 1
        with running_simulator(port=port, account="DU1234567", seed=2, market="open"):
            await exporter.wait_for("gatewatch_gateway_connected", lambda v: v == 1, timeout=8)
            await exporter.wait_for("gatewatch_probe_success", lambda v: v == 1, probe="quotes", kind="passive")
        # the simulator stopped: the exporter sees it and keeps serving
        await exporter.wait_for("gatewatch_gateway_connected", lambda v: v == 0)
        assert (await exporter.get("/metrics"))[0] == 200


async def test_stalled_gateway_fails_heartbeat_then_recovers() -> None:
    with running_simulator(account="DU1234567", seed=3, market="open") as sim:
        async with running_exporter(fast_config(sim.port)) as exporter:
            await exporter.wait_for("gatewatch_probe_success", lambda v: v == 1, probe="heartbeat", kind="passive")
            sim.inject({"fault": "stall", "for": "4s"})
            await exporter.wait_for("gatewatch_probe_success", lambda v: v == 0, probe="heartbeat", kind="passive",
                                    timeout=6)
            assert (await exporter.get("/metrics"))[0] == 200  # served from its own thread meanwhile
            await exporter.wait_for("gatewatch_probe_success", lambda v: v == 1, probe="heartbeat", kind="passive",
                                    timeout=12)
            await exporter.wait_for("gatewatch_gateway_connected", lambda v: v == 1)


async def test_historical_pacing_violation_backs_off() -> None:
    with running_simulator(account="DU1234567", seed=4, market="open") as sim:
        sim.inject({"fault": "historical_pacing", "for": "30s"})
        async with running_exporter(fast_config(sim.port)) as exporter:
            await exporter.wait_for("gatewatch_pacing_backoffs_total", lambda v: v == 1, code="162")
            assert await exporter.value("gatewatch_probe_success", probe="historical", kind="passive") == 0
            assert await exporter.value("gatewatch_api_errors_total", code="162", **{"class": "warning"}) == 1
            assert await exporter.value("gatewatch_gateway_connected") == 1


async def test_historical_bars_arrive() -> None:
    with running_simulator(account="DU1234567", seed=5, market="open") as sim:
        async with running_exporter(fast_config(sim.port)) as exporter:
            await exporter.wait_for("gatewatch_probe_success", lambda v: v == 1, probe="historical", kind="passive")
            assert await exporter.value("gatewatch_historical_bars", symbol="SPY") > 10  # type: ignore[operator]
            assert await exporter.value("gatewatch_historical_request_duration_seconds_count") == 1


async def test_bot_positions_file_compared(tmp_path) -> None:
    bot_file = tmp_path / "positions.json"
    bot_file.write_text('{"SPY": 3}')
    with running_simulator(account="DU1234567", seed=6, market="open") as sim:
        async with running_exporter(fast_config(sim.port, bot_positions_file=str(bot_file))) as exporter:
            await exporter.wait_for("gatewatch_position_drift", lambda v: v == -3, symbol="SPY", source="bot")
            assert await exporter.value("gatewatch_position_drift", symbol="SPY", source="ledger") is None
            # measured, not judged (ReconciliationDrift judges): the probe passes while it can compare
            assert await exporter.value("gatewatch_probe_success", probe="reconciliation", kind="passive") == 1
            bot_file.write_text("{}")
            await asyncio.sleep(2.5)  # two reconciliation runs
            assert await exporter.value("gatewatch_position_drift", symbol="SPY", source="bot") is None
            bot_file.write_text("[1, 2]")
            await exporter.wait_for("gatewatch_probe_success", lambda v: v == 0, probe="reconciliation",
                                    kind="passive", timeout=5)
            assert exporter.app.reconciliation.recorder.status.reason.endswith("expected an object mapping "
                                                                               "position keys to quantities")
