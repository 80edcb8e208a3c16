"""Issue 13 "Done when": in calendar mode over a weekend and overnight, no probe hangs.

The calendar-mode simulator's clock is moved (fault ``clock_shift``, the same one scenarios and the
control API use) to a Saturday noon and to 02:00 ET on a trading day; gatewatch's active probes then
run there twice, as an operator and as the exporter run them: ``gatewatch probe run`` (the real
CLI, in a subprocess) and the exporter's probe schedule (probes.active.schedule.run_schedule). Each
run must end within a bound with a result for every probe: a pass, or a failure that says why
(no quote on a closed market, an empty history window), never a wait without end. ``market_hours_only``
is off so that the probes do run at those hours instead of pausing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import yaml
from support.active import open_orders

from exporter.metrics import Metrics
from gatewatch.config import GatewatchConfig
from gatewatch.market_calendar import EASTERN, NYSE
from probes.active.runner import PROBES
from probes.active.schedule import run_schedule
from simulator.testing import SimHandle, running_simulator

BOUND = 30.0
"""Seconds for one whole probe run: eight order probes that each wait ``fill_timeout`` (1 s) for a
quote a closed market does not send, plus the request probes; a hang would run past it."""


def _next(weekday: int, hour: int) -> dt.datetime:
    """The next ``weekday`` (Monday 0) at ``hour``:00 ET, at least a day ahead."""
    day = dt.datetime.now(EASTERN).date() + dt.timedelta(days=1)
    while day.weekday() != weekday or (weekday < 5 and not NYSE.is_trading_day(day)):
        day += dt.timedelta(days=1)
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=EASTERN)


def _at(target: dt.datetime) -> Any:
    sim = running_simulator(port=0, control_port=0, seed=1, symbols=["SPY"], tick_hz=4.0, market="calendar")
    handle = sim.__enter__()
    handle.inject({"fault": "clock_shift", "ms": (target.timestamp() - time.time()) * 1000})
    assert handle.state()["market_open"] is False
    return sim, handle


def _settings(sim: SimHandle, tmp_path: Path) -> dict[str, Any]:
    return {
        "gateway": {"host": "127.0.0.1", "port": sim.port, "paper_ports": [sim.port], "connect_timeout": 5,
                    "request_timeout": 3},
        "active": {"journal_path": str(tmp_path / "probes.sqlite"), "fill_timeout": 1, "cancel_timeout": 2,
                   "close_retry_wait": 0.25, "market_hours_only": False, "interval": 600},
    }


def test_probe_run_on_a_saturday_ends_with_a_result_for_every_probe(tmp_path: Path) -> None:
    saturday = _next(5, 12)
    sim, handle = _at(saturday)
    try:
        config = tmp_path / "gatewatch.yaml"
        config.write_text(yaml.safe_dump(_settings(handle, tmp_path)), encoding="utf-8")
        junit = tmp_path / "probes.xml"
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "gatewatch.cli", "probe", "run", "--config", str(config), "--junit", str(junit)],
            capture_output=True, text=True, timeout=BOUND + 15,
        )
        elapsed = time.monotonic() - started
        left = open_orders(handle)
    finally:
        sim.__exit__(None, None, None)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    assert elapsed < BOUND + 10, elapsed  # start-up of the interpreter on top of the run
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert list(cases) == list(PROBES)
    for name, case in cases.items():
        failure = case.find("failure")
        assert failure is None or (failure.get("message") or "").strip(), f"{name} failed without a reason"
    # the closed market is named, not mistaken for pacing or a dead Gateway
    assert "no bid/ask" in (cases["fill"].find("failure").get("message") or "")  # type: ignore[union-attr]
    assert cases["rate"].find("failure") is None
    assert "paced" not in done.stdout
    assert left == []


async def test_exporter_schedule_overnight_publishes_every_probe(tmp_path: Path) -> None:
    overnight = _next(2, 2)  # a Wednesday that is a trading day, 02:00 ET: before even pre-market
    sim, handle = _at(overnight)
    try:
        config = GatewatchConfig.model_validate(_settings(handle, tmp_path))
        metrics = Metrics()
        stop = asyncio.Event()
        task = asyncio.create_task(run_schedule(config, metrics, stop, backoff_base=0.05))
        recorders = [metrics.outcomes.recorder(name, "active", log=False) for name in PROBES]
        deadline = time.monotonic() + BOUND
        while any(r.status.success is None for r in recorders) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(task, 10)  # the schedule ends too
        left = open_orders(handle)
    finally:
        sim.__exit__(None, None, None)
    hung = [r.probe for r in recorders if r.status.success is None]
    assert hung == [], f"no result within {BOUND:g} s from {hung}"
    assert all(r.status.success or r.status.reason for r in recorders)
    assert left == []
