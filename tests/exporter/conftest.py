from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from support.exporter import RunningExporter, fast_config, running_exporter

from simulator import running_simulator

SYMBOLS = ["SPY", "QQQ", "IWM"]


@pytest.fixture
def sim() -> Iterator[object]:
    with running_simulator(account="DU1234567", seed=1, symbols=SYMBOLS, tick_hz=4.0, market="open") as handle:
        yield handle


@pytest.fixture
async def exporter(sim: object) -> AsyncIterator[RunningExporter]:
    async with running_exporter(fast_config(sim.port)) as running:  # type: ignore[attr-defined]
        await running.wait_for("gatewatch_gateway_connected", lambda v: v == 1)
        yield running
