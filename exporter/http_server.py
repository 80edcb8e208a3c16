"""The exporter's HTTP endpoint: ``/metrics`` and ``/healthz``, served from its own thread.

Why a thread: the probes live on an asyncio loop that can be busy (a burst of ticks, a slow
reconnect); Prometheus must still get an answer within its scrape timeout. The handler reads only
the metric registry and a health callback, both safe to read from another thread.

``/healthz`` is a liveness check for the container: it answers 200 while this process works, even
when the Gateway is down (restarting the exporter would not bring a Gateway back); the body says
how the Gateway and the probes are doing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

HealthFunction = Callable[[], dict[str, Any]]
RenderFunction = Callable[[], bytes]


class MetricsServer:
    """A small threaded HTTP server; ``port`` 0 picks a free port (read it back from ``port``)."""

    def __init__(self, host: str, port: int, render: RenderFunction | CollectorRegistry,
                 health: HealthFunction) -> None:
        """``render`` writes the /metrics body; a prometheus-client registry is written with its own
        ``generate_latest`` (the proxy serves one)."""
        if isinstance(render, CollectorRegistry):
            registry = render

            def render() -> bytes:
                return generate_latest(registry)

        handler = _handler_class(render, health)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_class(render: RenderFunction, health: HealthFunction) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "gatewatch-exporter"
        protocol_version = "HTTP/1.1"  # keep-alive: Prometheus reuses its scrape connection
        wbufsize = 1 << 16  # headers and body leave in one write, flushed once per request
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, render())
            elif path == "/healthz":
                body = json.dumps(health(), sort_keys=True).encode()
                self._send(200, "application/json", body)
            elif path == "/":
                self._send(200, "text/html; charset=utf-8",
                           b'<html><body><h1>gatewatch exporter</h1><p><a href="/metrics">/metrics</a> '
                           b'<a href="/healthz">/healthz</a></p></body></html>')
            else:
                self._send(404, "text/plain; charset=utf-8", b"not found: try /metrics or /healthz\n")

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Scrapes every few seconds would drown the state-change log lines: stay quiet."""

    return Handler
