"""Tiny HTTP/JSON control API (stdlib asyncio only): POST/DELETE /faults, GET /state, GET /healthz."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, Protocol

from loguru import logger

MAX_BODY = 1024 * 1024
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
}


class ControlTarget(Protocol):
    """The four things the control API does to a simulator (the server implements them)."""

    @property
    def port(self) -> int: ...
    def state(self) -> dict[str, Any]: ...
    def inject(self, body: Any) -> dict[str, Any]: ...
    def clear_faults(self) -> dict[str, Any]: ...


class ControlServer:
    def __init__(self, sim: ControlTarget) -> None:
        self.sim = sim
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._handle, host, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, payload = await asyncio.wait_for(self._request(reader), 10)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, ValueError):
            status, payload = 400, {"error": "malformed HTTP request"}
        body = json.dumps(payload, default=str).encode()
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        try:
            writer.write(head + body)
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _request(self, reader: asyncio.StreamReader) -> tuple[int, Any]:
        line = (await reader.readline()).decode("latin-1").strip()
        parts = line.split()
        if len(parts) < 2:
            return 400, {"error": "malformed request line"}
        method, path = parts[0].upper(), parts[1].split("?", 1)[0].rstrip("/") or "/"
        length = 0
        while True:
            h = (await reader.readline()).decode("latin-1")
            if h in ("\r\n", "\n", ""):
                break
            name, _, value = h.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if length > MAX_BODY:
            return 413, {"error": "body too large"}
        raw = await reader.readexactly(length) if length else b""
        return self._route(method, path, raw)

    def _route(self, method: str, path: str, raw: bytes) -> tuple[int, Any]:
        if path == "/healthz":
            return (
                (200, {"ok": True, "port": self.sim.port}) if method == "GET" else (405, {"error": "use GET"})
            )
        if path == "/state":
            return (200, self.sim.state()) if method == "GET" else (405, {"error": "use GET"})
        if path == "/faults":
            if method == "GET":
                return 200, {"faults": self.sim.state()["faults"]}
            if method == "DELETE":
                return 200, self.sim.clear_faults()
            if method == "POST":
                try:
                    body = json.loads(raw.decode() or "null")
                except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                    return 400, {"error": f"body is not valid JSON: {exc}"}
                try:
                    return 200, self.sim.inject(body)
                except ValueError as exc:
                    logger.info("control API rejected fault {}: {}", body, exc)
                    return 400, {"error": str(exc)}
            return 405, {"error": "use GET, POST or DELETE"}
        return 404, {"error": f"no route {path}; try /state, /faults, /healthz"}
