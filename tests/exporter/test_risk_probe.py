"""The risk probe measures exposure; the limit is judged by PositionLimitExceeded only, so a
position over the limit leaves the probe passing (PassiveProbeFailing does not fire beside it). It
exports which risk limits fail the session (session.risk_limits_fail), which sets the alerts' severity."""

from __future__ import annotations

from support.exporter import fast_config, running_exporter

from simulator import running_simulator


async def test_a_position_over_the_limit_is_measured_and_the_probe_passes() -> None:
    with running_simulator(account="DU1234567", seed=1, market="open") as sim:
        config = fast_config(sim.port, max_position_ratio=0.0001)
        config.session.risk_limits_fail.day_trades = False
        async with running_exporter(config) as exporter:
            await exporter.wait_for("gatewatch_gateway_connected", lambda v: v == 1)
            assert await exporter.value("gatewatch_risk_limit_fails_session", limit="day_trades") == 0
            assert await exporter.value("gatewatch_risk_limit_fails_session", limit="position_limit") == 1
            assert await exporter.value("gatewatch_risk_limit_fails_session", limit="risk_per_trade") == 1
            sim.inject({"fault": "manual_trade", "symbol": "SPY", "qty": 10})
            ratio = await exporter.wait_for("gatewatch_position_exposure_ratio", lambda v: v > 0.0001,
                                            symbol="SPY")
            assert ratio > await exporter.value("gatewatch_risk_max_position_ratio")  # type: ignore[operator]
            runs = await exporter.value("gatewatch_probe_runs_total", probe="risk", kind="passive",
                                        result="success")
            await exporter.wait_for("gatewatch_probe_runs_total", lambda v: v > (runs or 0), probe="risk",
                                    kind="passive", result="success")
            assert await exporter.value("gatewatch_probe_success", probe="risk", kind="passive") == 1
