"""Malformed and hostile input never hurts the simulator or other clients."""

from __future__ import annotations

import asyncio
import socket
import struct

from support.sim import connect, frame, raw_hello, read_msg

from simulator.testing import SimHandle


def _closed_soon(s: socket.socket, timeout: float = 3) -> bool:
    s.settimeout(timeout)
    try:
        while True:
            if not s.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


async def test_hostile_inputs_leave_simulator_serving(sim: SimHandle) -> None:
    bystander = await connect(sim, 50)
    port = sim.port
    # wrong prefix
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET / HTTP/1.1\r\n\r\n")
    assert _closed_soon(s)
    # oversized length prefix
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"API\0" + struct.pack(">I", 0x7FFFFFFF))
    assert _closed_soon(s)
    # garbage version string
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"API\0" + frame(["hello"]))
    assert _closed_soon(s)
    # disconnect mid-hello and mid-message
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"API\0\0\0")
    s.close()
    s = raw_hello(port, client_id=51)
    s.sendall(struct.pack(">I", 100) + b"49\0")
    s.close()
    # garbage fields, unknown ids, non-numeric ids, empty frames: ignored, session stays usable
    s = raw_hello(port, client_id=52)
    for fields in (
        ["1", "11", "x", "y"],
        ["3", "abc"],
        ["9999", "1"],
        ["zz"],
        ["9", "8", "1", "NaN"],
        ["20", "q"],
        ["62", "1", "7", "All", ""],
        ["61"],
    ):
        s.sendall(frame(fields))
    s.sendall(struct.pack(">I", 0))
    s.sendall(frame(["49", "1"]))
    seen = []
    s.settimeout(3)
    while not any(m and m[0] == "49" for m in seen):
        seen.append(read_msg(s))
    s.close()
    # a client that sends nothing at all keeps one idle socket and nothing else
    idle = socket.create_connection(("127.0.0.1", port))
    await asyncio.sleep(0.2)
    assert bystander.isConnected()
    assert await asyncio.wait_for(bystander.reqPositionsAsync(), 3) == []
    fresh = await connect(sim, 53)
    assert fresh.isConnected()
    fresh.disconnect()
    idle.close()
    bystander.disconnect()


async def test_message_rate_pacing_disconnects_on_third_violation(sim: SimHandle) -> None:
    s = raw_hello(sim.port, client_id=60)
    burst = frame(["61", "1"]) * 60
    codes = []
    s.settimeout(3)
    for _ in range(3):
        s.sendall(burst)
        await asyncio.sleep(1.05)
    try:
        while True:
            m = read_msg(s)
            if m[0] == "4":
                codes.append(m[3])
    except (ConnectionError, TimeoutError, OSError):
        pass
    assert codes.count("100") == 3
    assert _closed_soon(s, 2)
    ok = await connect(sim, 61)
    assert ok.isConnected()
    ok.disconnect()
