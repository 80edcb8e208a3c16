"""A signal never leaves an order behind: SIGTERM/SIGINT to a real `gatewatch flatten` subprocess.

The simulator holds flatten's first close working (``partial_fill_next_order``: the order rests,
nothing fills), so the signal lands while flatten waits on an order it sent. The first signal must
stop new orders (the second contract is not touched), cancel the working close, leave the journal
agreeing with the Gateway and say what the probes hold; a second signal exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

from support.active import held, open_orders, probes_buy

from probes.active.journal import JournalReader
from probes.active.runner import run_probes
from simulator import running_simulator

ROOT = Path(__file__).resolve().parents[2]


async def _flatten_signalled(path: Path, signals: list[signal.Signals]) -> tuple[int, str, str, float]:
    """Start flatten, send ``signals`` once its first close is working; (status, stdout, stderr, seconds)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gatewatch", "flatten", "--config", str(path), cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None and proc.stderr is not None
    log: list[str] = []
    try:
        while "SELL" not in (line := (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()):
            assert line, "flatten ended before sending a close: " + "".join(log)
            log.append(line)
        await asyncio.sleep(0.3)  # the close is working (held by the simulator)
        started = time.monotonic()
        for sig in signals:
            proc.send_signal(sig)
            await asyncio.sleep(0.05)
        out, err = await asyncio.wait_for(proc.communicate(), 20)
        return proc.returncode or 0, out.decode(), "".join(log) + err.decode(), time.monotonic() - started
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def _setup(sim, config_for, tmp_path: Path):
    config = config_for(sim, fill_timeout=30, close_retry_attempts=1)
    asyncio.run(probes_buy(config, ["SPY", "QQQ"]))
    assert held(sim) == {"SPY": 1.0, "QQQ": 1.0}
    path = tmp_path / "gatewatch.yaml"
    path.write_text(config.model_dump_json())
    sim.inject({"fault": "partial_fill_next_order", "fraction": 0.5})  # flatten's first close rests
    return config, path


def _journal(config) -> dict[int, float]:
    with JournalReader(config.active.journal_path) as journal:
        return journal.net_positions()


def test_sigterm_settles_the_working_close_and_sends_nothing_more(tmp_path, config_for):
    with running_simulator(account="DU1234567", seed=1, symbols=["SPY", "QQQ"], tick_hz=4.0, market="open",
                           starting_cash=1_000_000.0) as sim:
        config, path = _setup(sim, config_for, tmp_path)
        status, out, err, seconds = asyncio.run(_flatten_signalled(path, [signal.SIGTERM]))
        assert status == 128 + signal.SIGTERM, out + err[-2000:]
        assert "Traceback" not in err, err[-2000:]
        assert "stopped by SIGTERM" in err and seconds < 10, (seconds, err[-1000:])
        assert open_orders(sim) == []  # the close it sent is cancelled, none left working
        sells = [o for o in sim.state()["orders"] if o["action"] == "SELL" and not o["whatIf"]]
        assert len(sells) == 1, f"an order was sent after the signal: {sells}"
        assert held(sim) == {"SPY": 1.0, "QQQ": 1.0}  # nothing filled: both still held, as reported
        journal = _journal(config)
        assert sorted(journal.values()) == [1.0, 1.0]  # the journal agrees with the Gateway
        for con_id in journal:
            assert f"NOT flat: conId {con_id}: probes' journal +1, Gateway +1" in out, out
        assert "cancelled " in out, out
        report = asyncio.run(run_probes(config, only=["error_recovery"], backoff_base=0.05))
        assert report.ok, report.results
        assert held(sim) == {} and open_orders(sim) == []


def test_a_second_signal_stops_flatten_at_once(tmp_path, config_for):
    with running_simulator(account="DU1234567", seed=1, symbols=["SPY", "QQQ"], tick_hz=4.0, market="open",
                           starting_cash=1_000_000.0) as sim:
        config, path = _setup(sim, config_for, tmp_path)
        stall = {"fault": "stall", "for": "20s"}  # the cancel is never confirmed: the settle would wait
        status, out, err, seconds = asyncio.run(_stalled_double_signal(path, sim, stall))
        assert status == 128 + signal.SIGINT, out + err[-2000:]
        assert "Traceback" not in err, err[-2000:]
        assert "stopped at once (second signal)" in err and seconds < 3, (seconds, err[-1000:])
        sim.clear_faults()
        report = asyncio.run(run_probes(config, only=["error_recovery"], backoff_base=0.05))
        assert report.ok, report.results
        assert held(sim) == {} and open_orders(sim) == [] and _journal(config) == {}


async def _stalled_double_signal(path: Path, sim, stall: dict) -> tuple[int, str, str, float]:
    """SIGINT while the close works, stall the Gateway so the settle waits, then SIGINT again."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gatewatch", "flatten", "--config", str(path), cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None and proc.stderr is not None
    try:
        while "SELL" not in (await asyncio.wait_for(proc.stderr.readline(), 30)).decode():
            pass
        await asyncio.sleep(0.3)
        sim.inject(stall)
        proc.send_signal(signal.SIGINT)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 1.5)
        assert proc.returncode is None, "the first signal did not wait for the settle"
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 10)
        return proc.returncode or 0, out.decode(), err.decode(), time.monotonic() - started
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
