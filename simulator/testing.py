"""Run a simulator in a background thread for synchronous tests and benches."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

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

    def _call(self, fn: Any, *args: Any) -> Any:
        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def inject(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call(self.sim.inject, body)

    def clear_faults(self) -> dict[str, Any]:
        return self._call(self.sim.clear_faults)

    def state(self) -> dict[str, Any]:
        return self._call(self.sim.state)


@contextlib.contextmanager
def running_simulator(**kwargs: Any) -> Iterator[SimHandle]:
    """``with running_simulator(port=0, control_port=0, seed=1) as sim: ...`` (SimConfig fields)."""
    kwargs.setdefault("port", 0)
    kwargs.setdefault("control_port", 0)
    cfg = SimConfig(**kwargs)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, Any] = {}

    def main() -> None:
        asyncio.set_event_loop(loop)

        async def boot() -> None:
            try:
                sim = Simulator(cfg)
                await sim.start()
                box["sim"] = sim
            except BaseException as exc:
                box["error"] = exc
            finally:
                ready.set()

        loop.run_until_complete(boot())
        if "sim" in box:
            loop.run_forever()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    thread = threading.Thread(target=main, name="simulator", daemon=True)
    thread.start()
    ready.wait(30)
    if "error" in box:
        raise box["error"]
    sim: Simulator = box["sim"]
    try:
        yield SimHandle(sim, loop)
    finally:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(sim.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
