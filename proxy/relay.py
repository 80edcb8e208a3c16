"""The relay: one upstream connection per bot connection, bytes unchanged and in order both ways.

Why frame-aligned forwarding: the proxy must be able to hold back a refused placeOrder, drop a
frozen symbol's ticks or slip an error message into the bot's stream without ever cutting a frame
in two. So each direction forwards whole frames as soon as they are complete (see
:mod:`proxy.frames`); what cannot be framed is relayed as it comes. Everything the proxy does
besides copying (decoding, guarding, faults) lives behind :class:`RelayHooks`, and a hook that
raises is logged and ignored: it must never stall or break a bot's connection.

Back-pressure: each direction reads a bounded chunk, writes it and awaits ``drain()`` before
reading again, with a bounded transport write buffer; a slow bot therefore slows the reads from
the Gateway (and the other way round) instead of growing a buffer without limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

from loguru import logger

from proxy.frames import FrameScanner, frame

CHUNK = 64 * 1024
WRITE_HIGH_WATER = 256 * 1024
CONNECT_TIMEOUT = 10.0
TO_GATEWAY = "to_gateway"
TO_BOT = "to_bot"
#: Who ended a connection (label values of the disconnect counter).
BY_BOT, BY_GATEWAY, BY_PROXY = "bot", "gateway", "proxy"


class Connection:
    """One bot connection and its upstream; the decoder keeps what it learns on it here."""

    _ids = itertools.count(1)

    def __init__(
        self,
        bot: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        gateway: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream_port: int,
    ) -> None:
        self.id = next(self._ids)
        self.bot_reader, self.bot_writer = bot
        self.gw_reader, self.gw_writer = gateway
        peer = self.bot_writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.upstream_port = upstream_port
        self.client_id: int | None = None
        self.server_version = 0
        self.accounts: list[str] = []
        self.closed_by: str | None = None
        self.state: dict[str, Any] = {}

    @property
    def ready(self) -> bool:
        """True once the handshake is done: injected frames then land on a frame boundary."""
        return self.server_version > 0 and not self.bot_writer.is_closing()

    def send_to_bot(self, payload: bytes) -> None:
        """Write one frame of our own to the bot (between relayed frames, never inside one)."""
        if self.ready:
            self.bot_writer.write(frame(payload))

    def cut(self, by: str = BY_PROXY) -> None:
        """Close both sides now (fault injection, shutdown)."""
        if self.closed_by is None:
            self.closed_by = by
        for w in (self.bot_writer, self.gw_writer):
            _close(w)


class RelayHooks:
    """What the relay calls besides copying; the base class only copies."""

    def admit(self, peer: str) -> bool:
        """False refuses a new bot connection (a fault that refuses reconnects)."""
        return True

    def opened(self, conn: Connection) -> None:
        """A bot connection and its upstream are open."""

    def upstream_failed(self, peer: str, error: str) -> None:
        """The Gateway could not be reached for a new bot connection."""

    def closed(self, conn: Connection) -> None:
        """Both sides are closed; ``conn.closed_by`` says who ended it."""

    def filter(self, conn: Connection, direction: str, payloads: list[bytes]) -> list[bytes] | None:
        """Return the payloads to forward instead of ``payloads``, or None to forward them as they are."""
        return None

    def observe(self, conn: Connection, direction: str, payloads: list[bytes]) -> None:
        """Decode what was forwarded (after the write: off the relay's critical path)."""

    def opaque(self, conn: Connection, direction: str, reason: str, nbytes: int) -> None:
        """Bytes that could not be framed were relayed as they came."""

    async def gate(self, conn: Connection) -> None:
        """Awaited before each write to the bot (stall and latency faults)."""


class Relay:
    """Listens for bots and relays each one to its own upstream connection."""

    def __init__(self, listen: tuple[str, int], upstream: tuple[str, int], hooks: RelayHooks | None = None) -> None:
        self.listen = listen
        self.upstream = upstream
        self.hooks = hooks or RelayHooks()
        self.connections: set[Connection] = set()
        self.port = listen[1]
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, self.listen[0], self.listen[1])
        self.port = int(self._server.sockets[0].getsockname()[1])
        logger.info("proxy listening on {}:{}, upstream {}:{}", self.listen[0], self.port, *self.upstream)
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.cut(BY_PROXY)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except Exception:
            logger.exception("proxy connection failed unexpectedly; closed")
        finally:
            _close(writer)
            if task is not None:
                self._tasks.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        peer_text = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        if not self._call("admit", peer_text, default=True):
            logger.info("proxy refused connection from {} (fault: refuse reconnects)", peer_text)
            return
        try:
            gw = await asyncio.wait_for(asyncio.open_connection(*self.upstream), CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            logger.warning("proxy: Gateway {}:{} unreachable for bot {}: {}", *self.upstream, peer_text, exc)
            self._call("upstream_failed", peer_text, str(exc) or type(exc).__name__)
            return
        for w in (writer, gw[1]):
            with contextlib.suppress(AttributeError, RuntimeError):
                w.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        conn = Connection((reader, writer), gw, self.upstream[1])
        self.connections.add(conn)
        self._call("opened", conn)
        up = asyncio.create_task(self._pump(conn, reader, gw[1], TO_GATEWAY))
        down = asyncio.create_task(self._pump(conn, gw[0], writer, TO_BOT))
        try:
            done, _ = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
            first = up if up in done else down
            if conn.closed_by is None and not first.cancelled():
                conn.closed_by = first.result()
        finally:
            for t in (up, down):
                t.cancel()
            await asyncio.gather(up, down, return_exceptions=True)
            conn.cut(conn.closed_by or BY_PROXY)
            self.connections.discard(conn)
            self._call("closed", conn)

    async def _pump(
        self, conn: Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str
    ) -> str:
        """Copy one direction until its source ends; return who ended the connection."""
        src, dst = (BY_BOT, BY_GATEWAY) if direction == TO_GATEWAY else (BY_GATEWAY, BY_BOT)
        scanner = FrameScanner(expect_prefix=direction == TO_GATEWAY)
        hooks = self.hooks
        to_bot = direction == TO_BOT
        while True:
            try:
                chunk = await reader.read(CHUNK)
            except (ConnectionError, OSError):
                return src
            if not chunk:
                # The sender went away: pass on an incomplete last frame as it was, then close.
                tail = scanner.pending()
                if tail:
                    with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                        writer.write(tail)
                return src
            lead, frames, payloads, rest = scanner.feed(chunk)
            if payloads:
                try:
                    kept = hooks.filter(conn, direction, payloads)
                except Exception:
                    logger.exception("proxy filter hook failed; frames forwarded unchanged")
                    kept = None
                if kept is not None:
                    payloads = kept
                    frames = b"".join(frame(p) for p in kept)
            if to_bot:
                await hooks.gate(conn)
            data = lead + frames + rest if (lead or rest) else frames
            if data:
                if writer.is_closing():
                    return dst
                writer.write(data)
            if payloads:
                try:
                    hooks.observe(conn, direction, payloads)
                except Exception:
                    logger.exception("proxy decoder failed on a {} batch; relay continues", direction)
            if (lead or rest) and scanner.opaque:
                self._call("opaque", conn, direction, scanner.opaque_reason, len(lead) + len(rest))
            try:
                await writer.drain()
            except (ConnectionError, OSError):
                return dst

    def _call(self, name: str, *args: Any, default: Any = None) -> Any:
        try:
            return getattr(self.hooks, name)(*args)
        except Exception:
            logger.exception("proxy hook {} failed; ignored", name)
            return default


def _close(writer: asyncio.StreamWriter) -> None:
    if not writer.is_closing():
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            writer.close()
