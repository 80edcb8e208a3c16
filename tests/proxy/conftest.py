"""Fixtures: a fresh simulator per test and the proxy in front of it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from simulator.testing import SimHandle, running_simulator


@pytest.fixture
def sim() -> Iterator[SimHandle]:
    with running_simulator(port=0, control_port=0, seed=1, tick_hz=20) as handle:
        yield handle
