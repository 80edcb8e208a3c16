"""The quotes probe against the simulator: quiet logs while a quote stays stale, and no failure for
staleness while the market is closed (the age is still reported).

Market hours are set through the probe's own MarketHours, in the contract-details format the
Gateway sends (``20261128:CLOSED``), so the test does not depend on the hour it runs at.
"""

from __future__ import annotations

import asyncio
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


async def test_stale_while_closed_is_not_a_failure(sim, exporter: RunningExporter) -> None:
    probe = exporter.app.quotes
    await exporter.wait_for("gatewatch_probe_success", lambda v: v == 1, probe="quotes", kind="passive")
    set_closed(probe)
    sim.inject({"fault": "freeze", "symbol": "SPY", "for": "60s"})
    sim.inject({"fault": "drop_bid_ask", "symbol": "IWM", "for": "60s"})  # bid/ask -1, as when closed
    await exporter.wait_for("gatewatch_market_open", lambda v: v == 0, exchange="NYSE")
    await exporter.wait_for("gatewatch_quote_age_seconds", lambda v: v > 3, symbol="SPY")  # limit: 2 s
    await exporter.wait_for("gatewatch_quote_sane", lambda v: v == 0, symbol="IWM")
    before = await exporter.value("gatewatch_probe_runs_total", probe="quotes", kind="passive", result="success")
    await asyncio.sleep(1.5)  # at least one more judgement with SPY stale and IWM without bid/ask
    after = await exporter.value("gatewatch_probe_runs_total", probe="quotes", kind="passive", result="success")
    assert before is not None and after is not None and after > before
    assert await exporter.value("gatewatch_probe_success", probe="quotes", kind="passive") == 1
    # the same stream during market hours is a failure
    set_open_all_day(probe)
    await exporter.wait_for("gatewatch_probe_success", lambda v: v == 0, probe="quotes", kind="passive")
    assert await exporter.value("gatewatch_market_open", exchange="NYSE") == 1
    assert probe.recorder.status.reason == (
        "SPY stale (no quote for over 2 s); IWM bid/ask missing or crossed")


async def test_a_stale_quote_logs_one_line_not_one_per_second(sim, exporter: RunningExporter) -> None:
    probe = exporter.app.quotes
    set_open_all_day(probe)
    await exporter.wait_for("gatewatch_probe_success", lambda v: v == 1, probe="quotes", kind="passive")
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message).rstrip("\n")), level="INFO", format="{message}")
    try:
        sim.inject({"fault": "freeze", "symbol": "QQQ", "for": "60s"})
        await exporter.wait_for("gatewatch_probe_success", lambda v: v == 0, probe="quotes", kind="passive")
        failures = await exporter.value("gatewatch_probe_runs_total", probe="quotes", kind="passive",
                                        result="failure")
        await exporter.wait_for("gatewatch_probe_runs_total", lambda v: v >= (failures or 0) + 3,
                                probe="quotes", kind="passive", result="failure")
        sim.inject({"fault": "freeze", "symbol": "SPY", "for": "60s"})  # the set of failing symbols changes
        await exporter.wait_for("gatewatch_quote_age_seconds", lambda v: v > 3, symbol="SPY")
    finally:
        logger.remove(sink)
    quote_lines = [line for line in lines if line.startswith("probe quotes")]
    assert quote_lines == [
        "probe quotes failing: QQQ stale (no quote for over 2 s)",
        "probe quotes failing: SPY stale (no quote for over 2 s); QQQ stale (no quote for over 2 s)",
    ]
