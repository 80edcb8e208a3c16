"""Stopping the simulator while clients are still dialling in leaves nothing running on its loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading

from support.sim import raw_hello

from simulator.config import SimConfig
from simulator.server import Simulator


def _dial(port: int, held: list[socket.socket], stop: threading.Event) -> None:
    """Connect and say hello until told to stop or refused, keeping every socket open."""
    while not stop.is_set() and len(held) < 300:
        try:
            held.append(raw_hello(port, client_id=None))
        except OSError:
            return
        stop.wait(0.005)


async def test_stop_while_clients_dial_in_leaves_no_session_task() -> None:
    """A connection accepted as the listener closes reaches the simulator after its sessions were
    dropped; it must be closed too, not left with a session and a writer task on a loop that its
    owner is about to close (they would be destroyed pending, their clean-up never run)."""
    for _ in range(5):
        sim = Simulator(SimConfig(port=0, control_port=None, seed=1))
        await sim.start()
        held: list[socket.socket] = []
        stop = threading.Event()
        dialers = [threading.Thread(target=_dial, args=(sim.port, held, stop)) for _ in range(3)]
        for dialer in dialers:
            dialer.start()
        try:
            await asyncio.sleep(0.2)
            await sim.stop()
            await asyncio.sleep(0.2)  # late connections reach _on_connect now; the clients stay connected
            left = [task for task in asyncio.all_tasks()
                    if task.get_coro().__qualname__.startswith(("Session.", "Simulator."))]  # type: ignore[union-attr]
            assert left == [], f"still running after stop(): {left}"
        finally:
            stop.set()
            for dialer in dialers:
                await asyncio.to_thread(dialer.join, 5)
            for s in held:
                with contextlib.suppress(OSError):
                    s.close()


async def test_stop_while_a_gone_clients_replies_are_held_by_a_stall_leaves_no_writer() -> None:
    """A client that left during a stall still has replies queued: its writer waits out the stall
    (the grace to flush them). Stopping the simulator then must end that writer too."""
    sim = Simulator(SimConfig(port=0, control_port=None, seed=1))
    await sim.start()
    try:
        sim.inject({"fault": "stall", "for": "30s"})
        client = await asyncio.to_thread(raw_hello, sim.port, client_id=7)  # the hello's answers are held
        await asyncio.sleep(0.2)
        client.close()
        await asyncio.sleep(0.2)  # the session has read the end of its client; its writer is still held
    finally:
        await sim.stop()
    left = [task for task in asyncio.all_tasks()
            if task.get_coro().__qualname__.startswith(("Session.", "Simulator."))]  # type: ignore[union-attr]
    assert left == [], f"still running after stop(): {left}"
