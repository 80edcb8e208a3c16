"""The risk probe measures exposure; the limit is judged by PositionLimitExceeded only, so a
position over the limit leaves the probe passing (PassiveProbeFailing does not fire beside it)."""

from __future__ import annotations

from support.exporter import fast_config, running_exporter

from simulator import running_simulator


async def test_a_position_over_the_limit_is_measured_and_the_probe_passes() -> None:
    with running_simulator(account="DU1234567", seed=1, market="open") as sim:
        async with running_exporter(fast_config(sim.port, max_position_ratio=0.0001)) as exporter:
            await exporter.wait_for("gatewatch_gateway_connected", lambda v: v == 1)
            sim.inject({"fault": "manual_trade", "symbol": "SPY", "qty": 10})
            ratio = await exporter.wait_for("gatewatch_position_exposure_ratio", lambda v: v > 0.0001,
                                            symbol="SPY")
            assert ratio > await exporter.value("gatewatch_risk_max_position_ratio")  # type: ignore[operator]
            runs = await exporter.value("gatewatch_probe_runs_total", probe="risk", kind="passive",
                                        result="success")
            await exporter.wait_for("gatewatch_probe_runs_total", lambda v: v > (runs or 0), probe="risk",
                                    kind="passive", result="success")
            assert await exporter.value("gatewatch_probe_success", probe="risk", kind="passive") == 1
