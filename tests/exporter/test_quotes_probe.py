"""The quotes probe against the simulator measures and does not judge: a stale or one-sided quote,
market open or closed, leaves the probe passing (and silent) while the age and sanity series show
it for the rules to judge; a stream it does not hold fails it.

Market hours are set through the probe's own MarketHours, in the contract-details format the
Gateway sends (``20261128:CLOSED``), so the test does not depend on the hour it runs at.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from loguru import logger
from support.exporter import RunningExporter

from probes.passive.quotes import QuotesProbe

NEW_YORK = ZoneInfo("America/New_York")


def _days() -> list[str]:
    today = datetime.now(UTC).astimezone(NEW_YORK).date()
    return [(today + timedelta(days=d)).strftime("%Y%m%d") for d in (-1, 0, 1)]


def set_closed(probe: QuotesProbe) -> None:
    probe.market_hours.update(";".join(f"{day}:CLOSED" for day in _days()), "US/Eastern")


def set_open_all_day(probe: QuotesProbe) -> None:
    probe.market_hours.update(";".join(f"{day}:0000-{day}:2359" for day in _days()), "US/Eastern")


async def test_a_stale_or_one_sided_quote_is_measured_not_judged(sim, exporter: RunningExporter) -> None:
    probe = exporter.app.quotes
    set_open_all_day(probe)
    await exporter.wait_for("gatewatch_probe_success", lambda v: v == 1, probe="quotes", kind="passive")
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message).rstrip("\n")), level="INFO", format="{message}")
    try:
        sim.inject({"fault": "freeze", "symbol": "SPY", "for": "60s"})
        sim.inject({"fault": "drop_bid_ask", "symbol": "IWM", "for": "60s"})
        await exporter.wait_for("gatewatch_market_open", lambda v: v == 1, exchange="NYSE")
        await exporter.wait_for("gatewatch_quote_age_seconds", lambda v: v > 3, symbol="SPY")  # limit: 2 s
        await exporter.wait_for("gatewatch_quote_sane", lambda v: v == 0, symbol="IWM")
        before = await exporter.value("gatewatch_probe_runs_total", probe="quotes", kind="passive",
                                      result="success")
        await exporter.wait_for("gatewatch_probe_runs_total", lambda v: v > (before or 0), probe="quotes",
                                kind="passive", result="success")
        assert await exporter.value("gatewatch_probe_success", probe="quotes", kind="passive") == 1
        set_closed(probe)
        await exporter.wait_for("gatewatch_market_open", lambda v: v == 0, exchange="NYSE")
        assert await exporter.value("gatewatch_probe_success", probe="quotes", kind="passive") == 1
    finally:
        logger.remove(sink)
    assert [line for line in lines if line.startswith("probe quotes")] == []


async def test_a_stream_not_held_fails_the_probe_with_one_line(sim, exporter: RunningExporter) -> None:
    probe = exporter.app.quotes
    await exporter.wait_for("gatewatch_probe_success", lambda v: v == 1, probe="quotes", kind="passive")
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message).rstrip("\n")), level="INFO", format="{message}")
    try:
        probe.states["QQQ"].subscribed = False  # as after a refused subscription
        await exporter.wait_for("gatewatch_probe_success", lambda v: v == 0, probe="quotes", kind="passive")
        failures = await exporter.value("gatewatch_probe_runs_total", probe="quotes", kind="passive",
                                        result="failure")
        await exporter.wait_for("gatewatch_probe_runs_total", lambda v: v >= (failures or 0) + 2,
                                probe="quotes", kind="passive", result="failure")
    finally:
        logger.remove(sink)
    assert [line for line in lines if line.startswith("probe quotes")] == ["probe quotes failing: QQQ not subscribed"]
