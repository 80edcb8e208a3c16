"""The exporter's HTTP endpoint: ``/metrics`` and ``/healthz``, served by one thread of its own.

Why a thread of its own: the probes live on an asyncio loop that can be busy (a burst of ticks, a
slow reconnect); Prometheus must still get an answer within its scrape timeout. That thread runs
its own small asyncio loop: every connection is an :class:`asyncio.Protocol` object (no thread, no
task, no stream reader/writer), so a crowd of scrapers or of clients that never finish their
request costs memory, not threads, and a kept-alive scrape costs one ``data_received`` call and
one write. What keeps it bounded:

* a listen backlog of :data:`BACKLOG` (the kernel queues bursts instead of refusing them),
* at most :data:`MAX_CONNECTIONS` open connections (past that a new one is closed at once),
* :data:`HEADER_TIMEOUT` to send a whole request head (a half-sent request is dropped),
* :data:`IDLE_TIMEOUT` for a kept-alive connection between requests (longer than any scrape
  interval, so Prometheus keeps its connection), and for a client that stops reading a response,
* :data:`MAX_HEAD` bytes of request head (more, and the connection is dropped unanswered); reading
  pauses while a response waits for a slow client to take it.

The handler reads only the render and health callbacks, both safe to call from another thread.

``/healthz`` is a liveness check for the container: it answers 200 while this process works, even
when the Gateway is down (restarting the exporter would not bring a Gateway back); the body says
how the Gateway and the probes are doing.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable
from typing import Any, cast

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

HealthFunction = Callable[[], dict[str, Any]]
RenderFunction = Callable[[], bytes]

BACKLOG = 512
MAX_CONNECTIONS = 1024
HEADER_TIMEOUT = 5.0
IDLE_TIMEOUT = 120.0
MAX_HEAD = 16 * 1024
INDEX = (b'<html><body><h1>gatewatch exporter</h1><p><a href="/metrics">/metrics</a> '
         b'<a href="/healthz">/healthz</a></p></body></html>')


class MetricsServer:
    """The HTTP endpoint; ``port`` 0 picks a free port (read it back from ``port`` once created)."""

    def __init__(self, host: str, port: int, render: RenderFunction | CollectorRegistry,
                 health: HealthFunction) -> None:
        """``render`` writes the /metrics body; a prometheus-client registry is written with its own
        ``generate_latest`` (the proxy serves one). The socket is bound here, so a taken port fails
        at once (OSError), before anything starts."""
        if isinstance(render, CollectorRegistry):
            registry = render

            def render() -> bytes:
                return generate_latest(registry)

        self._render = render
        self._health = health
        self._socket = socket.create_server((host, port), backlog=BACKLOG)
        self._socket.setblocking(False)
        self._loop = asyncio.new_event_loop()
        self._connections: set[_Connection] = set()
        self._stopping: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-http", daemon=True)

    @property
    def host(self) -> str:
        return str(self._socket.getsockname()[0])

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    def start(self) -> None:
        self._thread.start()
        self._started.wait(5)

    def stop(self) -> None:
        """Close the listener and every connection, then the loop (from any thread)."""
        if self._thread.is_alive() and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(timeout=5)
        else:
            self._socket.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        server = await self._loop.create_server(lambda: _Connection(self), sock=self._socket, backlog=BACKLOG)
        self._started.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            for connection in list(self._connections):
                connection.close()
            await asyncio.sleep(0)  # let the transports' close callbacks run before the loop closes

    def answer(self, head: bytes) -> tuple[bytes, bool]:
        """The response to one request head, and whether the connection stays open."""
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return _response(400, "text/plain; charset=utf-8", b"bad request\n", keep_alive=False), False
        method, target, version = parts
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        if "content-length" in headers or "transfer-encoding" in headers:
            keep_alive = False  # a request body is never read: do not read it as the next request
        if method not in ("GET", "HEAD"):
            return _response(405, "text/plain; charset=utf-8", b"only GET\n", keep_alive=False), False
        path = target.split("?", 1)[0]
        if path == "/metrics":
            status, ctype, body = 200, CONTENT_TYPE_LATEST, self._render()
        elif path == "/healthz":
            status, ctype, body = 200, "application/json", json.dumps(self._health(), sort_keys=True).encode()
        elif path == "/":
            status, ctype, body = 200, "text/html; charset=utf-8", INDEX
        else:
            status, ctype, body = 404, "text/plain; charset=utf-8", b"not found: try /metrics or /healthz\n"
        return _response(status, ctype, b"" if method == "HEAD" else body, keep_alive=keep_alive,
                         length=len(body)), keep_alive


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


def _response(status: int, ctype: str, body: bytes, *, keep_alive: bool, length: int | None = None) -> bytes:
    head = (f"HTTP/1.1 {status} {_REASONS[status]}\r\nServer: gatewatch-exporter\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body) if length is None else length}\r\n"
            f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n")
    return head.encode("latin-1") + body


class _Connection(asyncio.Protocol):
    """One client connection: bytes are gathered until a whole request head is in, then answered.

    One timer per connection, moved lazily: each request only writes a new deadline, and the timer,
    when it fires early, sets itself for the deadline then current (a kept-alive scrape costs no
    timer handle). The deadline is :data:`HEADER_TIMEOUT` after the first byte of a request (after
    connecting, for the first one) and :data:`IDLE_TIMEOUT` while waiting between requests or for
    the client to take a response (renewed while it takes some)."""

    def __init__(self, server: MetricsServer) -> None:
        self._server = server
        self._loop = server._loop
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._writing_paused = False
        self._idle = False  # between requests on a kept-alive connection
        self._pending = 0  # bytes a paused response still had to send at the last look
        self._closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        if len(self._server._connections) >= MAX_CONNECTIONS:
            self._closing = True
            self._transport.close()
            return
        self._server._connections.add(self)
        self._set_deadline(self._loop.time() + HEADER_TIMEOUT)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._server._connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        if not self._buffer:
            if self._idle:  # a request has begun after a kept-alive wait (the first: since connecting)
                self._idle = False
                self._deadline = self._loop.time() + HEADER_TIMEOUT
            self._buffer = data
        else:
            self._buffer += data
        self._process()

    def eof_received(self) -> bool | None:
        self.close()  # the client has finished sending; a partial head will never complete
        return None

    def pause_writing(self) -> None:
        """A response waits for the client: read nothing more until it is taken."""
        self._writing_paused = True
        self._pending = self._transport.get_write_buffer_size() if self._transport is not None else 0
        if self._transport is not None and not self._closing:
            self._transport.pause_reading()
        self._deadline = self._loop.time() + IDLE_TIMEOUT

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._await_next_request()
        if self._transport is not None and not self._closing:
            self._transport.resume_reading()
            self._process()

    def close(self) -> None:
        if not self._closing and self._transport is not None:
            self._closing = True
            self._transport.close()  # writes what is buffered, then closes

    def _process(self) -> None:
        """Answer every whole request head in the buffer (pipelined ones in order)."""
        transport = self._transport
        assert transport is not None
        while self._buffer and not self._closing and not self._writing_paused:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0 or end + 4 > MAX_HEAD:
                if end >= 0 or len(self._buffer) > MAX_HEAD:
                    self._buffer = b""
                    self.close()  # a head larger than allowed: nothing to answer
                break  # the rest of the head must arrive by the deadline already set
            head, self._buffer = self._buffer[:end + 4], self._buffer[end + 4:]
            response, keep_alive = self._server.answer(head)
            transport.write(response)  # may pause writing (a slow client): its deadline is then set
            if not keep_alive:
                self._buffer = b""
                self.close()
                return
            if not self._writing_paused:
                self._await_next_request()
        if not self._closing:
            self._set_deadline(self._deadline)

    def _await_next_request(self) -> None:
        """After a response was taken: idle until the next request, or its head due if it has begun."""
        self._idle = not self._buffer
        self._deadline = self._loop.time() + (IDLE_TIMEOUT if self._idle else HEADER_TIMEOUT)

    def _set_deadline(self, deadline: float) -> None:
        """Make the timer fire no later than ``deadline`` (a later one waits for it to fire)."""
        self._deadline = deadline
        if self._timer is None or self._timer_at > deadline:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_at(deadline, self._expire)
            self._timer_at = deadline

    def _expire(self) -> None:
        self._timer = None
        if self._closing:
            return
        if self._writing_paused and self._transport is not None:
            pending = self._transport.get_write_buffer_size()
            if pending < self._pending:  # the client is taking the response, slowly: wait on
                self._pending = pending
                self._deadline = self._loop.time() + IDLE_TIMEOUT
        if self._loop.time() >= self._deadline:
            self.close()  # a half-sent request, an idle keep-alive, or a client not reading
        else:
            self._set_deadline(self._deadline)
