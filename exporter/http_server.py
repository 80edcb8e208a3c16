"""The exporter's HTTP endpoint: ``/metrics`` and ``/healthz``, served by one thread of its own.

Why a thread of its own: the probes live on an asyncio loop that can be busy (a burst of ticks, a
slow reconnect); Prometheus must still get an answer within its scrape timeout. That thread runs
its own small asyncio loop: every connection is a coroutine, not a thread, so a crowd of scrapers
or of clients that never finish their request costs memory, not threads. What keeps it bounded:

* a listen backlog of :data:`BACKLOG` (the kernel queues bursts instead of refusing them),
* at most :data:`MAX_CONNECTIONS` open connections (past that a new one is closed at once),
* :data:`HEADER_TIMEOUT` to send a whole request head (a half-sent request is dropped),
* :data:`IDLE_TIMEOUT` for a kept-alive connection between requests (longer than any scrape
  interval, so Prometheus keeps its connection).

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
from typing import Any

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
        self._connections: set[asyncio.Task[None]] = set()
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
        server = await asyncio.start_server(self._serve, sock=self._socket, limit=MAX_HEAD, backlog=BACKLOG)
        self._started.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if len(self._connections) >= MAX_CONNECTIONS or task is None:
            writer.close()
            return
        self._connections.add(task)
        try:
            await self._converse(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, TimeoutError):
            pass  # the client went away, sent too much, or took too long: nothing to answer
        finally:
            self._connections.discard(task)
            writer.close()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer requests on one connection until the client closes it or a timeout passes."""
        first = True
        while True:
            # Between requests a kept-alive client may wait a scrape interval; a request, once begun,
            # must arrive whole within HEADER_TIMEOUT (the first one from the moment of connecting).
            start = b""
            if not first:
                async with asyncio.timeout(IDLE_TIMEOUT):
                    start = await reader.read(1)
                if not start:
                    return
            async with asyncio.timeout(HEADER_TIMEOUT):
                head = start + await reader.readuntil(b"\r\n\r\n")
            first = False
            keep_alive = self._answer(head, writer)
            await writer.drain()
            if not keep_alive:
                return

    def _answer(self, head: bytes, writer: asyncio.StreamWriter) -> bool:
        """Write the response to one request head; return whether the connection stays open."""
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            self._write(writer, 400, "text/plain; charset=utf-8", b"bad request\n", keep_alive=False)
            return False
        method, target, version = parts
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        connection = headers.get("connection", "").lower()
        keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        if "content-length" in headers or "transfer-encoding" in headers:
            keep_alive = False  # a request body is never read: do not read it as the next request
        if method not in ("GET", "HEAD"):
            self._write(writer, 405, "text/plain; charset=utf-8", b"only GET\n", keep_alive=False)
            return False
        path = target.split("?", 1)[0]
        if path == "/metrics":
            status, ctype, body = 200, CONTENT_TYPE_LATEST, self._render()
        elif path == "/healthz":
            status, ctype, body = 200, "application/json", json.dumps(self._health(), sort_keys=True).encode()
        elif path == "/":
            status, ctype, body = 200, "text/html; charset=utf-8", INDEX
        else:
            status, ctype, body = 404, "text/plain; charset=utf-8", b"not found: try /metrics or /healthz\n"
        self._write(writer, status, ctype, b"" if method == "HEAD" else body, keep_alive=keep_alive,
                    length=len(body))
        return keep_alive

    @staticmethod
    def _write(writer: asyncio.StreamWriter, status: int, ctype: str, body: bytes, *, keep_alive: bool,
               length: int | None = None) -> None:
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}[status]
        head = (f"HTTP/1.1 {status} {reason}\r\nServer: gatewatch-exporter\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body) if length is None else length}\r\n"
                f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n")
        writer.write(head.encode("latin-1") + body)
