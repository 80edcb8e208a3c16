"""close_retry when the market gaps into the close: a fill is the re-pricing working, not a failure.

Under a fast market (the rehearsal soak's 25 ticks/s, or real news) the walk can cross a re-priced
sell before the last attempt; the probe must pass, say that the escalation was not reached, count no
escalation, and leave the probes flat, instead of reporting a broken order path.
"""

from __future__ import annotations

import asyncio
import time

from support.active import held, open_orders

from exporter.metrics import Metrics
from probes.active.journal import Journal
from probes.active.runner import run_probes
from simulator.testing import SimHandle


async def _gap_up_once_the_close_rests(sim: SimHandle, timeout: float = 10.0) -> bool:
    """Wait for close_retry's first sell to rest at the simulator, then gap SPY up 5 % through it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        orders = await asyncio.to_thread(lambda: sim.state()["orders"])
        if any(o["action"] == "SELL" and ":close_retry:" in o["orderRef"] and o["status"] == "Submitted"
               for o in orders):
            await asyncio.to_thread(sim.inject, {"fault": "price_jump", "symbol": "SPY", "pct": 5})
            return True
        await asyncio.sleep(0.02)
    return False


async def test_a_gap_into_the_close_fills_it_and_the_probe_passes_without_escalating(sim, config_for):
    config = config_for(sim, close_retry_wait=2.0)  # time for the gap before the first re-price
    metrics = Metrics()
    gap = asyncio.create_task(_gap_up_once_the_close_rests(sim))
    report = await run_probes(config, only=["close_retry"], metrics=metrics, backoff_base=0.05)
    assert await gap, "close_retry's sell never rested at the simulator"
    [result] = report.results
    assert result.ok, result.detail
    assert "escalation not reached" in result.detail
    assert (metrics.registry.get_sample_value("gatewatch_order_close_escalations_total",
                                              {"probe": "close_retry"}) or 0) == 0
    assert open_orders(sim) == [] and held(sim) == {}
    journal = Journal(config.active.journal_path)
    try:
        assert journal.net_positions() == {}
    finally:
        journal.close()
