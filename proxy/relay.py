"""The relay: one upstream connection per bot connection, bytes unchanged and in order both ways.

Why frame-aligned forwarding: the proxy must be able to hold back a refused placeOrder, drop a
frozen symbol's ticks or slip an error message into the bot's stream without ever cutting a frame
in two. So each direction forwards whole frames as soon as they are complete (see
:mod:`proxy.frames`); what cannot be framed is relayed as it comes. Everything the proxy does
besides copying (decoding, guarding, faults) lives behind :class:`RelayHooks`, and a hook that
raises is logged and ignored: it must never stall or break a bot's connection.

Why asyncio protocols and not streams: a chunk is forwarded from inside ``data_received``, in the
same event-loop step that read it (no task switch per message), which is what keeps the added
latency per message in microseconds. Back-pressure: when the receiving side's transport buffer
passes its high-water mark (``pause_writing``), reading from the sending side pauses until it
drains (``resume_writing``), so a slow bot slows the reads from the Gateway (and the other way
round) instead of growing a buffer without limit. A fault that holds the bot's stream (stall,
latency) pauses the Gateway side the same way and forwards what was read, in order, afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from typing import Any

from loguru import logger

from proxy.frames import FrameScanner, frame

WRITE_HIGH_WATER = 256 * 1024
CONNECT_TIMEOUT = 10.0
TO_GATEWAY = "to_gateway"
TO_BOT = "to_bot"
#: Who ended a connection (label values of the disconnect counter).
BY_BOT, BY_GATEWAY, BY_PROXY = "bot", "gateway", "proxy"


class Connection:
    """One bot connection and its upstream; the decoder keeps what it learns on it here.

    ``bot_writer`` is the transport to the bot: the guard and the faults write their own frames
    with it (between relayed frames, since the relay only ever writes whole frames).
    """

    _ids = itertools.count(1)

    def __init__(self, relay: Relay, bot: asyncio.Transport, peer: str) -> None:
        self.id = next(self._ids)
        self.relay = relay
        self.bot_writer: asyncio.Transport = bot
        self.gw_writer: asyncio.Transport | None = None
        self.peer = peer
        self.upstream_port = relay.upstream[1]
        self.client_id: int | None = None
        self.server_version = 0
        self.accounts: list[str] = []
        self.closed_by: str | None = None
        self.state: dict[str, Any] = {}
        self.up: Pipe | None = None
        self.down: Pipe | None = None
        self._finished = False

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
        self.finish(by)

    def finish(self, by: str) -> None:
        """Close both sides (queued bytes still leave) and report the connection closed, once."""
        if self.closed_by is None:
            self.closed_by = by
        for transport in (self.bot_writer, self.gw_writer):
            if transport is not None and not transport.is_closing():
                transport.close()
        if self._finished:
            return
        self._finished = True
        for pipe in (self.up, self.down):
            if pipe is not None:
                pipe.cancel()
        if self in self.relay.connections:
            self.relay.connections.discard(self)
            self.relay.call("closed", self)


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

    def holding(self, conn: Connection) -> bool:
        """True while the bot's stream must wait for :meth:`gate` (checked for every chunk, so cheap)."""
        return False

    async def gate(self, conn: Connection) -> None:
        """Awaited before the bot's stream goes on while :meth:`holding` (stall and latency faults)."""


class Pipe:
    """One direction of a connection: frames what the source sends and writes it to the destination."""

    def __init__(self, conn: Connection, direction: str, source: asyncio.Transport, dest: asyncio.Transport) -> None:
        self.conn = conn
        self.direction = direction
        self.source = source
        self.dest = dest
        self.hooks = conn.relay.hooks
        self.scanner = FrameScanner(expect_prefix=direction == TO_GATEWAY)
        self.to_bot = direction == TO_BOT
        self._held: deque[bytes] = deque()
        self._task: asyncio.Task[None] | None = None
        self._dest_full = False

    def feed(self, chunk: bytes) -> None:
        """Forward a chunk now, or queue it behind a held stream (order is kept either way)."""
        if self._held or (self.to_bot and self._holding()):
            self._held.append(chunk)
            self._pause_source()
            if self._task is None:
                self._task = asyncio.get_running_loop().create_task(self._release())
            return
        self._forward(chunk)

    def _holding(self) -> bool:
        try:
            return self.hooks.holding(self.conn)
        except Exception:
            logger.exception("proxy holding hook failed; stream not held")
            return False

    async def _release(self) -> None:
        try:
            while self._held:
                try:
                    await self.hooks.gate(self.conn)
                except Exception:
                    logger.exception("proxy gate hook failed; stream released")
                while self._held:  # what waited out this gate goes on, in order
                    self._forward(self._held.popleft())
        finally:
            self._task = None
            self._resume_source()

    def _forward(self, chunk: bytes) -> None:
        lead, frames, payloads, rest = self.scanner.feed(chunk)
        conn, hooks, direction = self.conn, self.hooks, self.direction
        if payloads:
            try:
                kept = hooks.filter(conn, direction, payloads)
            except Exception:
                logger.exception("proxy filter hook failed; frames forwarded unchanged")
                kept = None
            if kept is not None:
                payloads = kept
                frames = b"".join(frame(p) for p in kept)
        data = lead + frames + rest if (lead or rest) else frames
        if data and not self.dest.is_closing():
            self.dest.write(data)
        if payloads:
            try:
                hooks.observe(conn, direction, payloads)
            except Exception:
                logger.exception("proxy decoder failed on a {} batch; relay continues", direction)
        if (lead or rest) and self.scanner.opaque:
            conn.relay.call("opaque", conn, direction, self.scanner.opaque_reason, len(lead) + len(rest))

    def source_ended(self) -> None:
        """The sender went away: pass on what it sent (held chunks, an incomplete last frame) as it was."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        while self._held:
            self._forward(self._held.popleft())
        tail = self.scanner.pending()
        if tail and not self.dest.is_closing():
            self.dest.write(tail)

    def dest_full(self, full: bool) -> None:
        self._dest_full = full
        if full:
            self._pause_source()
        elif self._task is None:
            self._resume_source()

    def _pause_source(self) -> None:
        with contextlib.suppress(RuntimeError, AttributeError):
            if self.source.is_reading():
                self.source.pause_reading()

    def _resume_source(self) -> None:
        if self._dest_full or self.source.is_closing():
            return
        with contextlib.suppress(RuntimeError, AttributeError):
            if not self.source.is_reading():
                self.source.resume_reading()

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None


class _Side(asyncio.Protocol):
    """One socket of a connection; ``name`` is who is on the other end of it (bot or gateway)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.conn: Connection | None = None
        self.outgoing: Pipe | None = None  # the pipe this side's data feeds
        self.incoming: Pipe | None = None  # the pipe that writes to this side
        self.early: list[bytes] = []  # bot bytes that arrive before the upstream is open

    def data_received(self, data: bytes) -> None:
        if self.outgoing is not None:
            self.outgoing.feed(data)
        else:
            self.early.append(data)

    def eof_received(self) -> bool:
        self._ended()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended()

    def _ended(self) -> None:
        conn = self.conn
        if conn is None or conn.closed_by is not None:
            return
        if self.outgoing is not None:
            self.outgoing.source_ended()
        conn.finish(self.name)

    def pause_writing(self) -> None:
        if self.incoming is not None:
            self.incoming.dest_full(True)

    def resume_writing(self) -> None:
        if self.incoming is not None:
            self.incoming.dest_full(False)


class _BotSide(_Side):
    def __init__(self, relay: Relay) -> None:
        super().__init__(BY_BOT)
        self.relay = relay
        self.transport: asyncio.Transport | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        peer_text = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        if not self.relay.call("admit", peer_text, default=True):
            logger.info("proxy refused connection from {} (fault: refuse reconnects)", peer_text)
            transport.close()
            return
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        transport.pause_reading()
        self.conn = Connection(self.relay, transport, peer_text)
        self.relay.track(asyncio.get_running_loop().create_task(self.relay.open_upstream(self)))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        super().connection_lost(exc)


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
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _BotSide(self), self.listen[0], self.listen[1])
        self.port = int(self._server.sockets[0].getsockname()[1])
        logger.info("proxy listening on {}:{}, upstream {}:{}", self.listen[0], self.port, *self.upstream)
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.cut(BY_PROXY)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def open_upstream(self, bot: _BotSide) -> None:
        """Connect this bot's own upstream, then let the bot's bytes flow."""
        conn = bot.conn
        assert conn is not None and bot.transport is not None
        loop = asyncio.get_running_loop()
        gw_side = _Side(BY_GATEWAY)
        try:
            transport, _ = await asyncio.wait_for(
                loop.create_connection(lambda: gw_side, *self.upstream), CONNECT_TIMEOUT
            )
        except (OSError, TimeoutError) as exc:
            logger.warning("proxy: Gateway {}:{} unreachable for bot {}: {}", *self.upstream, conn.peer, exc)
            self.call("upstream_failed", conn.peer, str(exc) or type(exc).__name__)
            bot.transport.close()
            return
        if bot.lost:
            transport.close()
            return
        assert isinstance(transport, asyncio.Transport)
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        conn.gw_writer = transport
        conn.up = Pipe(conn, TO_GATEWAY, bot.transport, transport)
        conn.down = Pipe(conn, TO_BOT, transport, bot.transport)
        bot.outgoing, bot.incoming = conn.up, conn.down
        gw_side.conn, gw_side.outgoing, gw_side.incoming = conn, conn.down, conn.up
        self.connections.add(conn)
        self.call("opened", conn)
        for chunk in bot.early:
            conn.up.feed(chunk)
        bot.early.clear()
        bot.transport.resume_reading()

    def call(self, name: str, *args: Any, default: Any = None) -> Any:
        try:
            return getattr(self.hooks, name)(*args)
        except Exception:
            logger.exception("proxy hook {} failed; ignored", name)
            return default
