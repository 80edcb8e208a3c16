"""The rate probe on a closed market: 162 "HMDS query returned no data" is the Gateway's answer for
an empty window, not a pacing violation (only 162 "... pacing violation" is)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest

from exporter.metrics import Metrics
from probes.active.pacing import is_pacing_error
from probes.active.request_probes import probe_rate
from probes.active.runner import ActiveSession
from simulator.testing import SimHandle, running_simulator

PAPER = "DU1234567"


def _saturday_noon_et() -> dt.datetime:
    now = dt.datetime.now(dt.UTC)
    day = now + dt.timedelta(days=(5 - now.weekday()) % 7 or 7)
    return day.replace(hour=17, minute=0, second=0, microsecond=0)  # 12:00 or 13:00 ET


@pytest.fixture
def weekend_sim() -> Iterator[SimHandle]:
    with running_simulator(port=0, control_port=0, account=PAPER, seed=1, symbols=["SPY"], tick_hz=4.0,
                           market="calendar") as handle:
        handle.inject({"fault": "clock_shift", "ms": (_saturday_noon_et().timestamp() - time.time()) * 1000})
        yield handle


def test_only_a_pacing_violation_is_a_pacing_error() -> None:
    assert is_pacing_error(100, "Max rate of messages per second has been exceeded:max=50 rec=51")
    assert is_pacing_error(162, "Historical Market Data Service error message:Historical data request pacing violation")
    assert not is_pacing_error(162, "Historical Market Data Service error message:HMDS query returned no data: SPY")
    assert not is_pacing_error(200, "No security definition has been found for the request")


async def test_rate_probe_on_a_weekend_is_not_taken_for_pacing(weekend_sim, config_for):
    metrics = Metrics()
    async with ActiveSession(config_for(weekend_sim), metrics=metrics, backoff_base=0.05) as session:
        ctx = await session.context()
        started = time.monotonic()
        detail = await probe_rate(ctx)  # frozen quotes answer the snapshots; the window is empty
        elapsed = time.monotonic() - started
        assert session.ib.isConnected()
    assert "paced" not in detail, detail
    assert "no bars (162 no data" in detail and "no pacing error" in detail, detail
    assert elapsed < 10, elapsed  # no back-off ladder
    assert (metrics.registry.get_sample_value("gatewatch_pacing_backoffs_total", {"code": "162"}) or 0) == 0
