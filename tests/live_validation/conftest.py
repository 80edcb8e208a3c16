"""Live validation suite: a simulator by default, a real PAPER Gateway with ``--gateway HOST:PORT``.

The session fixture refuses to go on unless the paper checks pass (the same PaperGuard the probes
use), and at the end flattens probe orders and positions only (orderRef prefix + journal).
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from gatewatch.config import GatewatchConfig, split_host_port
from probes.active.context import ProbeContext
from probes.active.runner import ActiveSession
from probes.flatten import flatten
from simulator import running_simulator
from simulator.testing import SimHandle


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--gateway", default=None, metavar="HOST:PORT",
                     help="run against a real PAPER IB Gateway instead of the simulator")


@dataclass
class Target:
    """What the suite talks to; ``sim`` is None on a real Gateway (fault steps are skipped)."""

    config: GatewatchConfig
    sim: SimHandle | None


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    journal = Path(tempfile.mkdtemp(prefix="gatewatch-live-")) / "journal.sqlite"
    address = request.config.getoption("--gateway")
    if address:
        host, port = split_host_port(address, field="--gateway")
        config = GatewatchConfig.model_validate({
            "gateway": {"host": host, "port": port},
            "active": {"journal_path": str(journal), "stream_test_duration": 30},
        })
        yield Target(config, None)
        return
    with running_simulator(port=0, control_port=0, account="DU1234567", seed=7, symbols=["SPY", "QQQ", "IWM"],
                           tick_hz=4.0, market="open") as sim:
        config = GatewatchConfig.model_validate({
            "gateway": {"host": "127.0.0.1", "port": sim.port, "paper_ports": [sim.port], "connect_timeout": 5,
                        "request_timeout": 5},
            "active": {"journal_path": str(journal), "fill_timeout": 5, "cancel_timeout": 5,
                       "close_retry_wait": 0.3, "stream_test_duration": 3},
        })
        yield Target(config, sim)


@pytest_asyncio.fixture
async def session(target: Target) -> AsyncIterator[ActiveSession]:
    """A connected probe session; refuses (fails the test) unless the paper checks pass."""
    async with ActiveSession(target.config, backoff_base=0.1 if target.sim else 2.0) as active:
        active.guard.check_paper()
        yield active
        await active.orders.cleanup(probe="live_validation")


@pytest_asyncio.fixture
async def ctx(session: ActiveSession) -> ProbeContext:
    return await session.context()


@pytest.fixture(scope="session", autouse=True)
def flatten_probe_orders_at_end(target: Target) -> Iterator[None]:
    yield
    import asyncio

    asyncio.run(flatten(target.config))  # probe orders/positions only, never --all
