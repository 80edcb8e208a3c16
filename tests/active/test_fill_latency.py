"""Issue 14: fill latency is marketable orders only; close_retry's deliberately resting close is left out."""

from __future__ import annotations

from exporter.metrics import Metrics
from probes.active.runner import run_probes


async def test_close_retry_resting_close_is_no_fill_latency_sample(sim, config_for):
    metrics = Metrics()
    report = await run_probes(config_for(sim), only=["close_retry"], metrics=metrics, backoff_base=0.05)
    assert report.ok, report.results
    # close_retry buys (marketable: one sample), then closes from a price above the ask (resting)
    assert metrics.fill_latency.count == 1
    assert len(report.fill_latencies) == 1


async def test_marketable_fills_are_each_measured_once(sim, config_for):
    metrics = Metrics()
    report = await run_probes(config_for(sim), only=["fill", "close", "duplicate"], metrics=metrics,
                              backoff_base=0.05)
    assert report.ok, report.results
    # fill: 1 buy; close: 1 marketable sell; duplicate: 2 buys + 2 closing sells
    assert metrics.fill_latency.count == len(report.fill_latencies) == 6
