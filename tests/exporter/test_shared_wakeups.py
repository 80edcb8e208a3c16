"""Periodic work rides on the wake-ups a streaming Gateway causes anyway, and never runs early."""

from __future__ import annotations

import asyncio
import time

from support.exporter import fast_config, running_exporter

from gatewatch.config import GatewayConfig
from probes import gateway
from probes.gateway import DATA_SLACK, GatewaySession
from simulator import running_simulator


async def _until_connected(session: GatewaySession) -> None:
    deadline = time.monotonic() + 10
    while not session.connected:
        assert time.monotonic() < deadline, "no connection"
        await asyncio.sleep(0.05)


async def test_a_streaming_gateway_wakes_the_probes_pass() -> None:
    """Quotes every 50 ms: each sleep ends at the first bytes after its time, not on a timer of its own."""
    with running_simulator(account="DU1234567", seed=1, market="open", tick_hz=20) as sim:
        async with running_exporter(fast_config(sim.port)) as exporter:
            session = exporter.app.session
            await _until_connected(session)
            await asyncio.sleep(1.0)  # the quote streams are flowing
            for _ in range(5):
                due = time.monotonic() + 0.37
                await session.sleep_until(due)
                woke = time.monotonic()
                assert woke >= due, "woke before its time"
                assert woke - session.last_inbound < 0.02, "woken by a timer while bytes were flowing"
                assert woke - due < DATA_SLACK


async def test_a_quiet_gateway_costs_the_pass_its_own_wake_up_slack_late() -> None:
    """No streams, nothing inbound: the sleep ends on its timer, DATA_SLACK after its time."""
    with running_simulator(account="DU1234567", seed=1, market="open") as sim:
        session = GatewaySession(GatewayConfig(port=sim.port, client_id=71))
        task = asyncio.create_task(session.run())
        try:
            await _until_connected(session)
            await asyncio.sleep(0.5)  # the connection's opening messages are in
            due = time.monotonic() + 0.3
            await session.sleep_until(due)
            late = time.monotonic() - due
            assert DATA_SLACK - 0.01 <= late < DATA_SLACK + 0.2
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def test_sleepers_of_one_point_wake_together_and_a_cancelled_one_leaves_the_others_asleep(monkeypatch) -> None:
    """Probes on one grid point share its slack timer; a stop of one of them must not wake, strand
    or keep a timer for the rest, and the last one gone leaves nothing scheduled."""
    monkeypatch.setattr(gateway, "DATA_SLACK", 1.0)  # room for a slow host between the steps below
    session = GatewaySession(GatewayConfig(port=1, client_id=71))  # never connected: only timers wake
    due = time.monotonic() + 0.2
    sleepers = [asyncio.create_task(session.sleep_until(due)) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert list(session._sleepers) == [due] and len(session._sleepers[due][1]) == 3, "one timer for the point"
    timer = session._sleepers[due][0]
    sleepers[0].cancel()
    await asyncio.sleep(0.05)
    assert not any(task.done() for task in sleepers[1:]), "a cancelled sleeper woke the others"
    await asyncio.wait_for(asyncio.gather(*sleepers[1:]), 2)
    assert time.monotonic() - due >= gateway.DATA_SLACK - 0.01
    assert sleepers[0].cancelled()
    assert timer.cancelled(), "the point's timer outlived its sleepers"
    lone_due = time.monotonic() + 5
    lone = asyncio.create_task(session.sleep_until(lone_due))
    await asyncio.sleep(0.05)
    lone_timer = session._sleepers[lone_due][0]
    lone.cancel()
    await asyncio.gather(lone, return_exceptions=True)
    assert lone_timer.cancelled(), "a timer left for nobody"
    assert session._sleepers == {} and session._sleepers_due == float("inf")


async def test_inbound_bytes_wake_only_the_points_that_are_due(monkeypatch) -> None:
    """Bytes after one point's time wake its sleepers, not those of a later point, which keep their timer."""
    monkeypatch.setattr(gateway, "DATA_SLACK", 5.0)  # no slack timer can fire during the test, however slow the host
    session = GatewaySession(GatewayConfig(port=1, client_id=71))
    now = time.monotonic()
    early = [asyncio.create_task(session.sleep_until(now + 0.1)) for _ in range(2)]
    late = asyncio.create_task(session.sleep_until(now + 3))
    await asyncio.sleep(0.15)  # past the early point: only bytes can wake it now
    assert not any(task.done() for task in early)
    session._on_data(b"")
    await asyncio.wait_for(asyncio.gather(*early), 1)
    assert not late.done() and list(session._sleepers) == [now + 3] and session._sleepers_due == now + 3
    late.cancel()
    await asyncio.gather(late, return_exceptions=True)
