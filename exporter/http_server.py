"""The exporter's HTTP endpoint: ``/metrics`` and ``/healthz``, served by one thread of its own.

Why a thread of its own: the probes live on an asyncio loop that can be busy (a burst of ticks, a
slow reconnect); Prometheus must still get an answer within its scrape timeout. That thread runs
a small event loop over :mod:`selectors`: every connection is a :class:`_Connection` record (no
thread, no task), so a crowd of scrapers or of clients that never finish their request costs
memory, not threads, and a kept-alive scrape costs one wake-up, one ``recv`` and one ``send``.

Why not asyncio on that thread (it was): Prometheus scrapes every few seconds, so each scrape finds
the thread's caches cold, and what a cold scrape costs grows with the code it runs. Answering a
static page cost a third of what a whole scrape did; this loop runs only the read, the answer and
the write, and takes half asyncio's CPU per cold kept-alive request (docs/performance.md).

What keeps it bounded:

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

import contextlib
import errno
import json
import math
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from loguru import logger
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

HealthFunction = Callable[[], dict[str, Any]]
RenderFunction = Callable[[], bytes]

BACKLOG = 512
MAX_CONNECTIONS = 1024
HEADER_TIMEOUT = 5.0
IDLE_TIMEOUT = 120.0
MAX_HEAD = 16 * 1024
READ_SIZE = 64 * 1024
ACCEPT_RETRY = 1.0
"""Seconds accepting pauses when the process is out of file descriptors or memory (as asyncio's
servers do), instead of spinning on a listener that stays readable."""
INDEX = (b'<html><body><h1>gatewatch exporter</h1><p><a href="/metrics">/metrics</a> '
         b'<a href="/healthz">/healthz</a></p></body></html>')
_STOP = object()  # the selector key data of the wake-up socket


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
        self._selector = selectors.DefaultSelector()
        self._wake_in, self._wake_out = socket.socketpair()  # stop() writes, the loop wakes
        self._connections: dict[socket.socket, _Connection] = {}
        self._next_check = math.inf  # monotonic time of the earliest deadline (or later: checked lazily)
        self._accept_paused_until: float | None = None
        self._stopping = False
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
        if self._thread.is_alive():
            self._stopping = True
            with contextlib.suppress(OSError):
                self._wake_out.send(b"\0")
            self._thread.join(timeout=5)
        else:
            self._close_all()

    def _run(self) -> None:
        selector = self._selector
        selector.register(self._socket, selectors.EVENT_READ, self)
        selector.register(self._wake_in, selectors.EVENT_READ, _STOP)
        self._started.set()
        try:
            while not self._stopping:
                timeout = None if self._next_check == math.inf else max(0.0, self._next_check - time.monotonic())
                for key, events in selector.select(timeout):
                    target = key.data
                    try:
                        if target is self:
                            self._accept()
                        elif isinstance(target, _Connection):
                            target.ready(events)
                    except Exception:  # a fault in one answer must not end the endpoint
                        logger.exception("metrics endpoint: dropping a connection after an error")
                        if isinstance(target, _Connection):
                            target.close()
                if time.monotonic() >= self._next_check:
                    self._expire()
        finally:
            self._close_all()

    def _close_all(self) -> None:
        for connection in list(self._connections.values()):
            connection.close()
        for sock in (self._socket, self._wake_in, self._wake_out):
            sock.close()
        self._selector.close()

    def _accept(self) -> None:
        """Take every waiting connection (a burst queued in the backlog is taken in one wake-up)."""
        while True:
            try:
                sock, _ = self._socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    logger.warning("metrics endpoint: cannot accept ({}); pausing {:g} s", exc, ACCEPT_RETRY)
                    self._selector.unregister(self._socket)
                    self._accept_paused_until = time.monotonic() + ACCEPT_RETRY
                    self.note_deadline(self._accept_paused_until)
                return  # anything else (a connection reset while queued): the next one is taken later
            if len(self._connections) >= MAX_CONNECTIONS:
                sock.close()
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a response's last piece goes at once
            connection = _Connection(self, sock)
            self._connections[sock] = connection
            self._selector.register(sock, selectors.EVENT_READ, connection)
            self.note_deadline(connection.deadline)

    def note_deadline(self, deadline: float) -> None:
        """Make the loop look no later than ``deadline`` (a later one is found when it looks)."""
        if deadline < self._next_check:
            self._next_check = deadline

    def _expire(self) -> None:
        """Close what is past its deadline; find the next time anything can be due."""
        now = time.monotonic()
        next_check = math.inf
        for connection in list(self._connections.values()):
            if now >= connection.deadline:
                connection.close()  # a half-sent request, an idle keep-alive, or a client not reading
            else:
                next_check = min(next_check, connection.deadline)
        if self._accept_paused_until is not None:
            if now >= self._accept_paused_until:
                self._accept_paused_until = None
                self._selector.register(self._socket, selectors.EVENT_READ, self)
            else:
                next_check = min(next_check, self._accept_paused_until)
        self._next_check = next_check

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


class _Connection:
    """One client connection: bytes are gathered until a whole request head is in, then answered.

    One deadline per connection, checked lazily by the server: each request only writes a new
    deadline, and the server is told of it only when it is the earliest thing due (a kept-alive
    scrape moves no timer). The deadline is :data:`HEADER_TIMEOUT` after the first byte of a
    request (after connecting, for the first one) and :data:`IDLE_TIMEOUT` while waiting between
    requests or for the client to take a response (renewed while it takes some)."""

    __slots__ = ("_buffer", "_close_after", "_idle", "_out", "_server", "_sock", "deadline", "open")

    def __init__(self, server: MetricsServer, sock: socket.socket) -> None:
        self._server = server
        self._sock = sock
        self._buffer = b""
        self._out = memoryview(b"")  # the part of a response the client has not taken yet
        self._idle = False  # between requests on a kept-alive connection
        self._close_after = False  # close once the response is out (Connection: close, HTTP/1.0...)
        self.deadline = time.monotonic() + HEADER_TIMEOUT
        self.open = True

    def ready(self, events: int) -> None:
        if events & selectors.EVENT_WRITE:
            self._send_rest()
        elif events & selectors.EVENT_READ:
            self._receive()

    def close(self) -> None:
        if self.open:
            self.open = False
            self._server._connections.pop(self._sock, None)
            with contextlib.suppress(KeyError, ValueError):
                self._server._selector.unregister(self._sock)
            self._sock.close()

    def _receive(self) -> None:
        try:
            data = self._sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        if not data:
            self.close()  # the client has finished sending; a partial head will never complete
            return
        if not self._buffer:
            if self._idle:  # a request has begun after a kept-alive wait (the first: since connecting)
                self._idle = False
                self.deadline = time.monotonic() + HEADER_TIMEOUT
            self._buffer = data
        else:
            self._buffer += data
        self._process()

    def _process(self) -> None:
        """Answer every whole request head in the buffer (pipelined ones in order)."""
        while self._buffer and self.open and not self._out:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0 or end + 4 > MAX_HEAD:
                if end >= 0 or len(self._buffer) > MAX_HEAD:
                    self.close()  # a head larger than allowed: nothing to answer
                    return
                break  # the rest of the head must arrive by the deadline already set
            head, self._buffer = self._buffer[:end + 4], self._buffer[end + 4:]
            response, keep_alive = self._server.answer(head)
            if not keep_alive:
                self._buffer = b""
                self._close_after = True
            self._send(response)
        if self.open:
            self._server.note_deadline(self.deadline)

    def _send(self, response: bytes) -> None:
        try:
            sent = self._sock.send(response)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.close()
            return
        if sent < len(response):  # the client's window is full: wait for it, reading nothing more
            self._out = memoryview(response)[sent:]
            self.deadline = time.monotonic() + IDLE_TIMEOUT
            self._server._selector.modify(self._sock, selectors.EVENT_WRITE, self)
        else:
            self._response_taken()

    def _send_rest(self) -> None:
        try:
            sent = self._sock.send(self._out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        self._out = self._out[sent:]
        self.deadline = time.monotonic() + IDLE_TIMEOUT  # the client is taking the response: wait on
        if not self._out:
            self._server._selector.modify(self._sock, selectors.EVENT_READ, self)
            self._response_taken()
            self._process()  # requests pipelined behind the one just answered

    def _response_taken(self) -> None:
        """Close if asked to; else idle until the next request, or its head due if it has begun."""
        if self._close_after:
            self.close()
            return
        self._idle = not self._buffer
        self.deadline = time.monotonic() + (IDLE_TIMEOUT if self._idle else HEADER_TIMEOUT)
