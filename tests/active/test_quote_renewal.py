"""Issue 11 item 9: the quote stream is renewed after 1101; a second concurrent run names error 326."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from probes.active.runner import ActiveSession, run_probes

ROOT = Path(__file__).resolve().parents[2]


async def test_quote_stream_renewed_after_1101(sim, config_for):
    async with ActiveSession(config_for(sim)) as session:
        ctx = await session.context()
        await ctx.orders.quote(ctx.instrument)
        restored = asyncio.Event()
        session.ib.errorEvent += lambda req_id, code, *_: restored.set() if code == 1101 else None
        sim.inject({"fault": "connectivity_lost", "for": "0.3s", "restore": "data_lost"})
        await asyncio.wait_for(restored.wait(), 5)
        at_restore = time.time()
        ticker = ctx.orders._tickers[ctx.instrument.conId]
        updates: list[float] = []
        ticker.updateEvent += lambda t: updates.append(time.time())
        for _ in range(40):  # the simulator ticks at 4 Hz: a live stream updates within a second or two
            if updates:
                break
            await asyncio.sleep(0.05)
        assert updates and updates[0] > at_restore, "the probes' quote stream stayed dead after 1101"
        bid, ask = await ctx.orders.quote(ctx.instrument, timeout=2)
        assert 0 < bid < ask


async def test_a_second_concurrent_probe_run_reports_326_clearly(sim, config_for):
    config = config_for(sim)
    async with ActiveSession(config):
        report = await run_probes(config_for(sim, gateway={"connect_timeout": 1}), only=["fill"], backoff_base=0.05)
    [result] = report.results
    assert not result.ok
    assert "already in use" in result.detail and "326" in result.detail, result.detail
    assert "TimeoutError" not in result.detail


async def test_flatten_while_a_probe_run_holds_the_client_id_says_so(sim, config_for, tmp_path):
    """flatten beside a running probe session: the Gateway is reachable, the id is taken (326)."""
    config = config_for(sim, gateway={"connect_timeout": 1})
    path = tmp_path / "gatewatch.yaml"
    path.write_text(config.model_dump_json())
    async with ActiveSession(config):
        done = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gatewatch", "flatten", "--config", str(path),
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(done.communicate(), 60)
    stderr = err.decode()
    assert done.returncode == 1, stderr
    assert "already in use" in stderr and "326" in stderr and "cannot reach" not in stderr, stderr
