"""Helpers shared by the simulator tests (ib_async clients and raw-socket clients)."""

from __future__ import annotations

import socket
import struct

from ib_async import IB

from simulator.testing import SimHandle


async def connect(sim: SimHandle, client_id: int = 1, **kwargs: object) -> IB:
    ib = IB()
    ib.RequestTimeout = 5
    await ib.connectAsync("127.0.0.1", sim.port, clientId=client_id, timeout=5, **kwargs)  # type: ignore[arg-type]
    return ib


def raw_hello(port: int, versions: bytes = b"v157..178", client_id: int | None = 5) -> socket.socket:
    """Open a raw socket, do the hello (and startApi when client_id is given)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"API\0" + struct.pack(">I", len(versions)) + versions)
    if client_id is not None:
        s.sendall(frame(["71", "2", str(client_id), ""]))
    return s


def frame(fields: list[str]) -> bytes:
    payload = "".join(f + "\0" for f in fields).encode()
    return struct.pack(">I", len(payload)) + payload


def read_msg(s: socket.socket) -> list[str]:
    head = _read_exact(s, 4)
    (n,) = struct.unpack(">I", head)
    body = _read_exact(s, n)
    out = body.decode().split("\0")
    return out[:-1]


def _read_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf
