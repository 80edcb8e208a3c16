"""Fixtures: a fresh simulator per test (it starts in milliseconds) and ib_async clients against it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from ib_async import IB
from support.sim import connect

from simulator.testing import SimHandle, running_simulator


@pytest.fixture
def sim() -> Iterator[SimHandle]:
    with running_simulator(port=0, control_port=0, seed=1, tick_hz=20) as handle:
        yield handle


@pytest.fixture
async def ib(sim: SimHandle) -> AsyncIterator[IB]:
    client = await connect(sim, 1)
    yield client
    client.disconnect()
