"""Issue 14: one request budget per Gateway, shared by gatewatch's clients in a process.

The historical rules are IBKR's (no identical request within 15 s, no 6 for one contract within
2 s, no more than 60 in 10 minutes), kept with a margin over every client of the Gateway, so the
rate probe's historical request and the exporter's historical probe never add up to a 162.
"""

from __future__ import annotations

import asyncio

from exporter.metrics import Metrics
from probes.active.pacing import HistoricalPacer, gateway_budget
from probes.active.runner import ActiveSession, run_probes
from probes.gateway import CurrentTimeRequester, GatewaySession
from probes.passive.base import PassiveContext
from probes.passive.historical import HistoricalProbe


def test_identical_request_waits_out_15_seconds():
    pacer = HistoricalPacer()
    pacer.log.append((100.0, "SPY|1 D", 1))
    assert pacer.delay("SPY|1 D", 1, 110.0) > 5
    assert pacer.delay("SPY|1 D", 1, 116.0) == 0
    assert pacer.delay("SPY|30 m", 1, 101.0) == 0  # different parameters: not identical


def test_same_contract_burst_and_ten_minute_window():
    pacer = HistoricalPacer()
    for i in range(4):
        pacer.log.append((200.0 + i * 0.1, f"k{i}", 7))
    assert pacer.delay("k9", 7, 200.5) > 0, "a fifth request for one contract within 2.5 s"
    assert pacer.delay("k9", 8, 200.5) == 0, "another contract is not held"
    pacer = HistoricalPacer()
    for i in range(50):
        pacer.log.append((i * 10.0, f"k{i}", i))
    assert pacer.delay("new", 999, 500.0) > 0
    assert pacer.delay("new", 999, 600.1) == 0


async def test_clients_of_one_gateway_share_one_budget(sim, config_for):
    config, other = config_for(sim), config_for(sim, gateway={"probe_client_id": 950})
    async with ActiveSession(config) as one, ActiveSession(other) as two:
        budget = gateway_budget(config.gateway.host, config.gateway.port)
        assert one.governor.pacer is budget.pacer is two.governor.pacer
        assert one.governor.historical is budget.historical is two.governor.historical
    assert gateway_budget("127.0.0.1", sim.port + 1) is not budget


async def test_rate_probe_and_historical_probe_share_the_historical_budget(sim, config_for):
    """Both run at once; every historical request either made goes through the one pacer, spaced by its rules."""
    config = config_for(sim, gateway={"client_id": 931})
    session = GatewaySession(config.gateway)
    runner = asyncio.create_task(session.run())
    try:
        await asyncio.wait_for(session.first_attempt_done.wait(), 10)
        metrics = Metrics()
        probe = HistoricalProbe(PassiveContext(session, config, CurrentTimeRequester(session, 5), metrics))
        report, _ = await asyncio.gather(run_probes(config, only=["rate"], backoff_base=0.05), probe.run_once())
        assert report.ok, report.results
        log = gateway_budget(config.gateway.host, config.gateway.port).historical.log
        assert len(log) == 2 and len({con_id for _, _, con_id in log}) == 1, log
        assert metrics.pacing_backoffs.get("162", 0) == 0
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        session.close()
