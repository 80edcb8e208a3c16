"""Run a simulator in a background thread for synchronous tests and benches."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from gatewatch.loop_thread import call_in_loop, loop_thread
from simulator.config import SimConfig
from simulator.server import Simulator


class SimHandle:
    """Thread-safe facade over a Simulator running in its own event loop."""

    def __init__(self, sim: Simulator, loop: asyncio.AbstractEventLoop) -> None:
        self.sim = sim
        self.loop = loop

    @property
    def port(self) -> int:
        return self.sim.port

    @property
    def control_port(self) -> int | None:
        return self.sim.control_port

    @property
    def cfg(self) -> SimConfig:
        return self.sim.cfg

    def inject(self, body: dict[str, Any]) -> dict[str, Any]:
        return call_in_loop(self.loop, self.sim.inject, body)

    def clear_faults(self) -> dict[str, Any]:
        return call_in_loop(self.loop, self.sim.clear_faults)

    def state(self) -> dict[str, Any]:
        return call_in_loop(self.loop, self.sim.state)


@contextlib.contextmanager
def running_simulator(**kwargs: Any) -> Iterator[SimHandle]:
    """``with running_simulator(port=0, control_port=0, seed=1) as sim: ...`` (SimConfig fields)."""
    kwargs.setdefault("port", 0)
    kwargs.setdefault("control_port", 0)
    cfg = SimConfig(**kwargs)
    box: dict[str, Simulator] = {}

    async def start() -> None:
        box["sim"] = Simulator(cfg)  # made on the loop that serves it
        await box["sim"].start()

    async def stop() -> None:
        await box["sim"].stop()

    with loop_thread(start, stop, name="simulator") as loop:
        yield SimHandle(box["sim"], loop)
