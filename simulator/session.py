"""One client connection: handshake, framing, output queue, pacing, then request dispatch.

Every failure caused by the peer (bad framing, garbage, early EOF) ends only this session; a bad
field inside an otherwise well-framed message is logged and the message ignored, as a Gateway does.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from loguru import logger

from simulator import messages as m
from simulator import protobuf
from simulator.contracts import Contract
from simulator.pacing import MAX_MSGS_PER_SEC, MAX_VIOLATIONS, MessagePacer
from simulator.wire import MAX_FRAME, Fields, ProtocolError, encode, split_fields

MIN_SERVER_VERSION = 157
MAX_SERVER_VERSION = 178


def negotiate(cmin: int, cmax: int, served: int) -> int | None:
    """The server version to speak to a client advertising ``cmin..cmax``, or None (close it).

    Only versions the simulator speaks correctly are ever chosen: 157-178 (the text protocol) and
    ``protobuf.MIN_SERVED``..``served`` (protobuf). 179-212 add text fields and message forms the
    simulator does not lay out, so a client advertising up to those gets the highest served version
    inside its range (178 when its range reaches down that far), as a Gateway older than the client
    would answer; a client whose range holds no served version is closed.
    """
    if served >= protobuf.MIN_SERVED and cmax >= protobuf.MIN_SERVED:
        sv = min(cmax, served)
        if sv >= cmin:
            return sv
    sv = min(cmax, MAX_SERVER_VERSION, served)
    if sv < cmin or sv < MIN_SERVER_VERSION:
        return None
    return sv


def served_ranges(served: int) -> str:
    """The versions a simulator capped at ``served`` speaks, for log lines."""
    text = f"{MIN_SERVER_VERSION}..{min(served, MAX_SERVER_VERSION)}"
    return f"{text}, {protobuf.MIN_SERVED}..{served}" if served >= protobuf.MIN_SERVED else text
HELLO_TIMEOUT = 10.0
_VERSION_RE = re.compile(r"^v(\d+)(?:\.\.(\d+))?(?:\s+(.*))?$")


@dataclass
class MktSub:
    """One market-data line of a client."""

    req_id: int
    contract: Contract
    last_trade_sent: float = -1.0


class SessionHost(Protocol):
    """What a session needs from the Gateway around it (the server implements it).

    Kept narrow so that this module never needs the whole simulator: a session frames, paces and
    hands each request to ``dispatch``; everything it says on its own (hello, 326, the sync burst)
    needs only these.
    """

    @property
    def account(self) -> str: ...
    @property
    def max_server_version(self) -> int: ...
    def clock(self) -> float: ...
    def hello_time(self) -> str: ...
    def register(self, s: Session) -> bool: ...
    def unregister(self, s: Session) -> None: ...
    def next_valid_id(self, client_id: int) -> int: ...
    def dispatch(self, s: Session, f: Fields) -> None: ...
    async def output_gate(self, queued_at: float) -> None: ...


class Session:
    def __init__(self, sim: SessionHost, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sim = sim
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.sv = 0
        self.proto = False  # server version above 200: 4-byte ids and protobuf messages
        self.client_id: int | None = None
        self.registered = False
        self.closed = False
        self._out: asyncio.Queue[tuple[bytes | None, Callable[[], None] | None, float]] = asyncio.Queue()
        self._writer_task: asyncio.Task[None] | None = None
        self.mkt: dict[int, MktSub] = {}
        self.md_type = 1
        self.account_updates = False
        self.positions_sub = False
        self.summary_subs: dict[int, list[str]] = {}
        self.multi_subs: set[int] = set()
        self.streams: dict[int, object] = {}  # req id -> simulator.streams subscription
        self._last_time_sec: int | None = None
        self.pacer = MessagePacer()
        self.pace_api = False  # the client connected with +PACEAPI: queue, do not reject
        self.pacing_violations = 0
        self.hist_log: deque[tuple[float, str, int]] = deque()

    # ------------------------------------------------------------------ output
    def send(self, fields: list[Any], on_write: Callable[[], None] | None = None) -> None:
        """Queue one message; the writer task applies stall/latency faults before writing."""
        if self.closed:
            return
        data = self._encode_proto(fields) if self.proto else encode(fields)
        self._out.put_nowait((data, on_write, time.monotonic()))

    def _encode_proto(self, fields: list[Any]) -> bytes:
        """At server versions above 200: the protobuf message, each frame led by its 4-byte id."""
        if int(fields[0]) == 17:
            parts = protobuf.encode_history(fields)
        else:
            one = protobuf.encode(fields, self.sv)
            if one is None:
                logger.warning("no protobuf form for message {} at server version {}; sent as text",
                               fields[0], self.sv)
                body = int(fields[0]).to_bytes(4, "big") + encode(fields[1:])[4:]
                return struct.pack(">I", len(body)) + body
            parts = [one]
        return b"".join(struct.pack(">I", len(b) + 4) + mid.to_bytes(4, "big") + b for mid, b in parts)

    def send_raw(self, data: bytes) -> None:
        if not self.closed:
            self._out.put_nowait((data, None, time.monotonic()))

    def error(self, req_id: int, code: int, text: str) -> None:
        self.send(m.error(self.sv, req_id, code, text))

    async def _writer_loop(self) -> None:
        try:
            while True:
                data, cb, queued_at = await self._out.get()
                if data is None:
                    break
                await self.sim.output_gate(queued_at)
                if self.writer.is_closing():
                    break
                self.writer.write(data)
                if cb is not None:
                    cb()
                if self._out.empty():
                    await self.writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._close_transport()

    def close_after_flush(self) -> None:
        """Deliver what is queued, then close (used after error 326 and pacing disconnects)."""
        self._out.put_nowait((None, None, time.monotonic()))

    def abort(self) -> None:
        """Drop the connection now (fault injection, shutdown)."""
        self._close_transport()
        if self._writer_task is not None:
            self._writer_task.cancel()

    async def wait_closed(self) -> None:
        """Until the writer task has ended (flushed and closed, or aborted); never raises."""
        if self._writer_task is not None:
            await asyncio.wait([self._writer_task])

    def _close_transport(self) -> None:
        self.closed = True
        if not self.writer.is_closing():
            with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                self.writer.close()

    # ------------------------------------------------------------------ input
    async def _read_payload(self) -> bytes:
        header = await self.reader.readexactly(4)
        (size,) = struct.unpack(">I", header)
        if size > MAX_FRAME:
            raise ProtocolError(f"frame of {size} bytes exceeds the {MAX_FRAME} byte limit")
        return await self.reader.readexactly(size) if size else b""

    async def _read_frame(self) -> list[str]:
        return split_fields(await self._read_payload())

    async def _read_message(self) -> list[str]:
        """One client message as text fields; above 200 the id is a 4-byte integer and an id above
        200 carries a protobuf request (translated by simulator/protobuf.py, or refused: [])."""
        payload = await self._read_payload()
        if not self.proto:
            return split_fields(payload)
        if len(payload) < 4:
            raise ProtocolError("frame without a message id")
        mid, body = int.from_bytes(payload[:4], "big"), payload[4:]
        if mid <= protobuf.PROTOBUF_MSG_ID:
            return [str(mid), *split_fields(body)]
        mid -= protobuf.PROTOBUF_MSG_ID
        try:
            fields = protobuf.decode_request(mid, body)
        except Exception as exc:  # a protobuf that does not parse: refuse it, keep the session
            logger.warning("client {}: unreadable protobuf message {} ({})", self.client_id, mid, exc)
            fields = None
        if fields is None:
            rid = protobuf.request_id(body)
            self.error(rid, 321, f"Error validating request.-'' : cause - message {mid} is not modelled "
                                 f"by this simulated Gateway at server version {self.sv}")
            return []
        return fields

    async def run(self) -> None:
        self._writer_task = asyncio.create_task(self._writer_loop())
        try:
            if not await asyncio.wait_for(self._handshake(), HELLO_TIMEOUT):
                return
            while not self.closed:
                fields = await self._read_message()
                if not fields:
                    continue
                if not await self._pace():
                    continue
                self.sim.dispatch(self, Fields(fields))
        except TimeoutError:
            logger.info("client {} sent no API hello within {:.0f}s; closing", self.peer, HELLO_TIMEOUT)
        except asyncio.IncompleteReadError:
            pass
        except ProtocolError as exc:
            logger.warning("closing {}: {}", self.peer, exc)
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("unexpected error in session {}; closing it", self.peer)
        finally:
            self.abort_soon()
            self.sim.unregister(self)

    def abort_soon(self) -> None:
        """Close after a short grace period so queued replies (e.g. 326) can still leave.

        The abort is armed even when the session is already marked closed (a pacing disconnect
        queued its own flush): a writer stuck on a peer that reads nothing must still end."""
        if not self.closed:
            self.close_after_flush()
        asyncio.get_running_loop().call_later(1.0, self.abort)

    async def _handshake(self) -> bool:
        prefix = await self.reader.readexactly(4)
        if prefix != b"API\0":
            raise ProtocolError(f"bad API prefix {prefix!r}")
        fields = await self._read_frame()
        text = "\0".join(fields).strip()
        match = _VERSION_RE.match(text)
        if not match:
            raise ProtocolError(f"bad version string {text[:60]!r}")
        cmin = int(match.group(1))
        cmax = int(match.group(2) or cmin)
        served = self.sim.max_server_version
        sv = negotiate(cmin, cmax, served)
        if sv is None:
            logger.warning(
                "client {} offers versions {}..{}; served: {}; closing",
                self.peer,
                cmin,
                cmax,
                served_ranges(served),
            )
            self.abort()
            return False
        self.sv = sv
        self.pace_api = "+PACEAPI" in (match.group(3) or "").upper().split()
        self.send([sv, self.sim.hello_time()])  # the hello is text at every version
        self.proto = sv >= protobuf.MIN_SERVER_VER_PROTOBUF
        # Wait for startApi; anything else before it is ignored, as TWS does.
        while True:
            fields = await self._read_message()
            f = Fields(fields)
            if f.s(0) == "71":
                try:
                    client_id = f.i(2)
                except ValueError:
                    raise ProtocolError("non-numeric client id in startApi") from None
                return self._start_api(client_id)

    def _start_api(self, client_id: int) -> bool:
        self.client_id = client_id
        if not self.sim.register(self):
            self.error(
                -1,
                326,
                "Unable to connect as the client id is already in use. Retry with a unique client id.",
            )
            logger.info("client {} rejected: client id {} already in use", self.peer, client_id)
            self.close_after_flush()
            return False
        self.registered = True
        logger.info("client {} connected as client id {} (server version {})", self.peer, client_id, self.sv)
        self.send([15, 1, self.sim.account])
        self.send([9, 1, self.sim.next_valid_id(client_id)])
        self.error(-1, 2104, "Market data farm connection is OK:usfarm")
        self.error(-1, 2106, "HMDS data farm connection is OK:ushmds")
        self.error(-1, 2158, "Sec-def data farm connection is OK:secdefnj")
        return True

    async def _pace(self) -> bool:
        """IBKR's 50 msgs/s rule (pacing.py): a client that asked for +PACEAPI is held until its
        message fits; any other gets error 100 for the message and is dropped at the third
        violation within a minute."""
        now = time.monotonic()
        pacer = self.pacer
        if self.pace_api:
            wait = pacer.wait_needed(now)
            if wait > 0:
                await asyncio.sleep(wait)
                now = time.monotonic()
            pacer.record(now)
            return True
        if pacer.wait_needed(now) == 0:
            pacer.record(now)
            return True
        seen = pacer.in_window(now) + 1
        self.pacing_violations = pacer.violation(now)
        self.error(-1, 100, f"Max rate of messages per second has been exceeded:max={MAX_MSGS_PER_SEC} rec={seen}")
        if self.pacing_violations >= MAX_VIOLATIONS:
            logger.warning(
                "client {} exceeded the message rate {} times within a minute; disconnecting",
                self.client_id,
                self.pacing_violations,
            )
            self.close_after_flush()
            self.closed = True
        return False

    def current_time(self) -> None:
        """Whole seconds; a second request in the same server second is never answered."""
        sec = int(self.sim.clock())
        if sec == self._last_time_sec:
            return
        self._last_time_sec = sec
        self.send([49, 1, sec])
