"""Fixtures: a real simulator over TCP and a config pointing the active probes at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gatewatch.config import GatewatchConfig
from simulator import running_simulator
from simulator.testing import SimHandle

PAPER = "DU1234567"


@pytest.fixture
def sim() -> Iterator[SimHandle]:
    with running_simulator(port=0, control_port=0, account=PAPER, seed=1, symbols=["SPY"], tick_hz=4.0,
                           market="open", starting_cash=1_000_000.0) as handle:
        yield handle


def make_config(sim: SimHandle, tmp_path: Path, **active: Any) -> GatewatchConfig:
    """Fast timeouts; the simulator's ephemeral port counts as a paper port unless overridden."""
    gateway = {"host": "127.0.0.1", "port": sim.port, "paper_ports": [sim.port], "connect_timeout": 5,
               "request_timeout": 5}
    gateway.update(active.pop("gateway", {}))
    settings = {"journal_path": str(tmp_path / "journal" / "probes.sqlite"), "fill_timeout": 3,
                "cancel_timeout": 3, "close_retry_wait": 0.25, "market_hours_only": False}
    settings.update(active)
    return GatewatchConfig.model_validate({"gateway": gateway, "active": settings})


@pytest.fixture
def config_for(tmp_path: Path) -> Callable[..., GatewatchConfig]:
    def build(sim: SimHandle, **active: Any) -> GatewatchConfig:
        return make_config(sim, tmp_path, **active)

    return build
