"""Reconciliation against the simulator: the ledger follows every client's fills (the exporter's
client id is the Gateway's Master API client id), and drift counts only when two consecutive checks
find it.

The probe is driven check by check (``run_once``) over a real connection, so "one check" and "two
consecutive checks" are exact rather than a matter of timing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from ib_async import IB, MarketOrder, Stock
from support.exporter import fast_config

from exporter.metrics import Metrics
from probes.gateway import CurrentTimeRequester, GatewaySession
from probes.passive.base import PassiveContext
from probes.passive.reconciliation import ReconciliationProbe
from simulator import running_simulator
from simulator.testing import SimHandle

PROBE_CLIENT_ID = 902  # the active order probes' default client id


@contextlib.asynccontextmanager
async def reconciliation(sim: SimHandle) -> AsyncIterator[ReconciliationProbe]:
    """A ReconciliationProbe on the exporter's own (client id 901) connection to ``sim``."""
    session = GatewaySession(fast_config(sim.port).gateway)
    task = asyncio.create_task(session.run())
    try:
        await asyncio.wait_for(session.first_attempt_done.wait(), 10)
        assert session.connected and session.config.client_id == 901
        config = fast_config(sim.port)
        yield ReconciliationProbe(PassiveContext(session, config, CurrentTimeRequester(session, 1.0), Metrics()))
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        session.close()


async def trade(port: int, action: str, qty: int, client_id: int = PROBE_CLIENT_ID) -> None:
    """One filled market order by another client (by default the order probes' client id)."""
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=client_id, timeout=5)
    try:
        [spy] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
        placed = ib.placeOrder(spy, MarketOrder(action, qty, orderRef="gatewatch-test"))
        for _ in range(250):
            if placed.isDone():
                break
            await asyncio.sleep(0.02)
        assert placed.orderStatus.status == "Filled"
    finally:
        ib.disconnect()


async def settle(probe: ReconciliationProbe, symbol: str, qty: float) -> None:
    """Wait until the exporter's streamed positions show ``qty`` of ``symbol`` (the position update
    travels separately from the execution report)."""
    for _ in range(150):
        held = {p.contract.symbol: p.position for p in probe.session.ib.positions()}
        if held.get(symbol, 0.0) == qty:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{symbol} position never reached {qty}")


def drift(probe: ReconciliationProbe, symbol: str) -> float | None:
    return probe.drift.get((symbol, "ledger"))


def discrepancies(probe: ReconciliationProbe) -> float:
    return float(probe.discrepancies["ledger"])


async def test_probe_fill_and_its_close_enter_the_ledger_without_drift() -> None:
    with running_simulator(account="DU1234567", seed=11, market="open") as sim:
        async with reconciliation(sim) as probe:
            await probe.run_once()  # seeds the ledger
            await trade(sim.port, "BUY", 1)
            await settle(probe, "SPY", 1)
            for _ in range(2):  # two consecutive checks: the debounce cannot hide a real drift
                await probe.run_once()
            assert probe.ledger == {"SPY": 1.0}
            assert drift(probe, "SPY") == 0 and discrepancies(probe) == 0
            await trade(sim.port, "SELL", 1)
            await settle(probe, "SPY", 0)
            for _ in range(2):
                await probe.run_once()
            assert probe.ledger == {}
            assert discrepancies(probe) == 0


async def test_without_a_master_client_another_clients_fill_is_drift() -> None:
    """What a real Gateway whose Master API client id is not the exporter's gives."""
    with running_simulator(account="DU1234567", seed=12, market="open", master_client_id=None) as sim:
        async with reconciliation(sim) as probe:
            await probe.run_once()
            await trade(sim.port, "BUY", 1)
            await settle(probe, "SPY", 1)
            await probe.run_once()  # first sighting: not yet counted
            assert drift(probe, "SPY") == 0 and discrepancies(probe) == 0
            await probe.run_once()  # measured, not judged: ReconciliationDrift fires on the gauge
            assert drift(probe, "SPY") == 1 and discrepancies(probe) == 1


async def test_a_difference_seen_by_one_check_only_is_not_drift() -> None:
    with running_simulator(account="DU1234567", seed=13, market="open") as sim:
        async with reconciliation(sim) as probe:
            await probe.run_once()
            sim.inject({"fault": "manual_trade", "symbol": "SPY", "qty": 5, "price": 550.0, "report": "none"})
            await settle(probe, "SPY", 5)
            await probe.run_once()
            assert drift(probe, "SPY") == 0
            sim.inject({"fault": "manual_trade", "symbol": "SPY", "qty": -5, "price": 550.0, "report": "none"})
            await settle(probe, "SPY", 0)
            await probe.run_once()
            await probe.run_once()
            assert discrepancies(probe) == 0


async def test_a_position_change_without_an_execution_is_drift_after_two_checks() -> None:
    with running_simulator(account="DU1234567", seed=14, market="open") as sim:
        async with reconciliation(sim) as probe:
            await probe.run_once()
            sim.inject({"fault": "manual_trade", "symbol": "SPY", "qty": 5, "price": 550.0, "report": "none"})
            await settle(probe, "SPY", 5)
            await probe.run_once()
            await probe.run_once()
            assert drift(probe, "SPY") == 5 and discrepancies(probe) == 1
            assert probe.executions["manual"] == 0  # no execution anywhere: nothing to attribute


async def test_a_hand_trade_reported_as_a_gateway_reports_it_is_drift_and_told_apart() -> None:
    """A trade placed by hand in TWS reaches the Master API client as an execution of client id 0:
    counted as manual and kept out of the ledger, so it shows as drift; the probes' own fill does not."""
    with running_simulator(account="DU1234567", seed=15, market="open") as sim:
        async with reconciliation(sim) as probe:
            await probe.run_once()
            await trade(sim.port, "BUY", 1, client_id=7)  # the bot's order (an API client): accounted
            sim.inject({"fault": "manual_trade", "symbol": "SPY", "qty": 5, "price": 550.0})
            await settle(probe, "SPY", 6)
            await probe.run_once()
            await probe.run_once()
            assert probe.executions == {"manual": 1, "api": 1, "probe": 0}
            assert probe.ledger == {"SPY": 1.0}
            assert drift(probe, "SPY") == 5 and discrepancies(probe) == 1
