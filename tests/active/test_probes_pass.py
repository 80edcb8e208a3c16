"""Every active probe passes against the simulator, and leaves nothing behind."""

from __future__ import annotations

import time

from support.active import held, open_orders, real_orders

from exporter.metrics import Metrics
from probes.active.journal import Journal
from probes.active.request_probes import probe_rate
from probes.active.runner import PROBES, ActiveSession, run_probes


async def test_every_probe_passes_and_leaves_nothing_behind(sim, config_for):
    config = config_for(sim)
    metrics = Metrics()
    report = await run_probes(config, metrics=metrics, backoff_base=0.05)
    assert [r.name for r in report.results] == list(PROBES)
    failed = [(r.name, r.detail) for r in report.results if not r.ok]
    assert failed == []
    assert open_orders(sim) == []
    assert held(sim) == {}
    orders = sim.state()["orders"]
    assert orders and all(o["orderRef"].startswith("gatewatch:") for o in orders)
    journal = Journal(config.active.journal_path)
    try:
        assert len(journal.all_orders()) == len(real_orders(sim))  # every order journalled, none twice
        assert journal.open_orders() == []
        assert journal.net_positions() == {}
    finally:
        journal.close()
    sample = metrics.registry.get_sample_value
    assert sample("gatewatch_order_fill_latency_seconds_count") >= 1
    assert sample("gatewatch_order_close_escalations_total", {"probe": "close_retry"}) == 1
    escalations = [s for f in metrics.registry.collect() if f.name == "gatewatch_order_close_escalations"
                   for s in f.samples if s.name.endswith("_total")]
    assert sum(s.value for s in escalations) == 1, escalations  # only close_retry's deliberate one
    assert sample("gatewatch_probe_orders_total", {"action": "buy"}) >= 1
    assert (sample("gatewatch_pacing_backoffs_total", {"code": "100"}) or 0) == 0


async def test_message_pacing_error_backs_off_and_recovers(sim, config_for):
    metrics = Metrics()
    async with ActiveSession(config_for(sim), metrics=metrics, backoff_base=0.05) as session:
        ctx = await session.context()
        sim.inject({"fault": "pacing", "count": 3})
        started = time.monotonic()
        detail = await probe_rate(ctx)
        assert time.monotonic() - started >= 0.05 + 0.1 + 0.2  # backed off 1x, 2x, 4x the base
        assert "recovered" in detail
        assert session.ib.isConnected()
    sample = metrics.registry.get_sample_value
    assert sample("gatewatch_pacing_backoffs_total", {"code": "100"}) == 3


async def test_historical_pacing_error_backs_off_and_retries(sim, config_for):
    metrics = Metrics()
    async with ActiveSession(config_for(sim), metrics=metrics, backoff_base=0.2) as session:
        ctx = await session.context()
        sim.inject({"fault": "historical_pacing", "for": "0.5s"})
        detail = await probe_rate(ctx)
        assert "recovered" in detail and "bars" in detail
        assert session.ib.isConnected()
    assert (metrics.registry.get_sample_value("gatewatch_pacing_backoffs_total", {"code": "162"}) or 0) >= 1


async def test_partial_fill_cancels_remainder_and_keeps_journal_consistent(sim, config_for):
    config = config_for(sim)
    sim.inject({"fault": "partial_fill_next_order", "fraction": 0.5})
    report = await run_probes(config, only=["fill"], backoff_base=0.05)
    result = report.results[0]
    assert not result.ok and "not filled" in result.detail
    assert open_orders(sim) == []
    assert held(sim) == {}
    journal = Journal(config.active.journal_path)
    try:
        assert journal.open_orders() == []
        assert journal.net_positions() == {}
    finally:
        journal.close()


async def test_rejected_order_is_reported_and_not_retried(sim, config_for):
    sim.inject({"fault": "reject_next_order", "reason": "simulated risk check"})
    report = await run_probes(config_for(sim), only=["fill"], backoff_base=0.05)
    result = report.results[0]
    assert not result.ok and "simulated risk check" in result.detail
    assert len(real_orders(sim)) == 1
    assert held(sim) == {}
