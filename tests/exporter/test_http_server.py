"""The HTTP endpoint under load: a crowd of scrapers all answered in time, half-sent requests held
without a thread each and dropped after the header timeout."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from exporter import http_server
from exporter.http_server import MetricsServer
from gatewatch.localstack.net import free_port
from gatewatch.localstack.process import child_environment, start_exporter


@pytest.fixture
def exporter_port(tmp_path: Path):  # type: ignore[no-untyped-def]
    """The real exporter as its own process (watching a port where nothing listens)."""
    listen = free_port()
    config = tmp_path / "gatewatch.yaml"
    config.write_text(f"gateway:\n  port: {free_port()}\n")
    proc = start_exporter(config, listen, tmp_path / "exporter.log", env=child_environment(drop=["GATEWATCH_GATEWAY"]))
    try:
        yield listen, psutil.Process(proc.pid)
    finally:
        proc.stop(15)


def test_200_concurrent_scrapers_with_a_2s_timeout_never_fail(exporter_port) -> None:  # type: ignore[no-untyped-def]
    port, _ = exporter_port
    failures: list[str] = []
    done = [0]
    stop = time.monotonic() + 4

    def scraper() -> None:
        while time.monotonic() < stop:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
                    assert b"gatewatch_gateway_connected 0.0" in resp.read()
                done[0] += 1
            except Exception as exc:
                failures.append(repr(exc))

    threads = [threading.Thread(target=scraper) for _ in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == [], f"{len(failures)} of {len(failures) + done[0]} scrapes failed: {failures[:3]}"
    assert done[0] >= 200


def test_300_half_sent_requests_hold_no_threads_and_are_dropped(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(http_server, "HEADER_TIMEOUT", 1.0)
    server = MetricsServer("127.0.0.1", 0, lambda: b"up 1\n", lambda: {"status": "ok"})
    server.start()
    threads_before = threading.active_count()
    slow = []
    try:
        for _ in range(300):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finished
            slow.append(s)
        assert threading.active_count() <= threads_before + 1
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=2) as resp:
            assert resp.read() == b"up 1\n"
        time.sleep(1.5)
        for s in slow[:20]:
            assert s.recv(1) == b"", "a half-sent request was kept past the header timeout"
    finally:
        for s in slow:
            s.close()
        server.stop()


def test_kept_alive_connection_serves_many_requests() -> None:
    import http.client
    server = MetricsServer("127.0.0.1", 0, lambda: b"up 1\n", lambda: {"status": "ok"})
    server.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=2)
        for _ in range(50):
            conn.request("GET", "/metrics")
            assert conn.getresponse().read() == b"up 1\n"
        conn.request("GET", "/nope")
        assert conn.getresponse().status == 404
        conn.close()
    finally:
        server.stop()


@pytest.fixture
def small_server(monkeypatch):  # type: ignore[no-untyped-def]
    """An in-process server with short timeouts and a body large enough to fill socket buffers."""
    monkeypatch.setattr(http_server, "HEADER_TIMEOUT", 0.5)
    monkeypatch.setattr(http_server, "IDLE_TIMEOUT", 1.0)
    big = b"x" * (8 * 1024 * 1024)
    server = MetricsServer("127.0.0.1", 0, lambda: big, lambda: {"status": "ok"})
    server.start()
    yield server, big
    server.stop()


def _exchange(port: int, request: bytes, timeout: float = 3) -> bytes:
    """Send ``request``, read until the server closes, return everything it sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        chunks = []
        with contextlib.suppress(ConnectionResetError):  # closed with the request unread: a reset
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


def test_answers_and_closes_as_http_says(small_server) -> None:  # type: ignore[no-untyped-def]
    server, big = small_server
    port = server.port
    assert _exchange(port, b"garbage\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert _exchange(port, b"POST /metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 405 ")
    head = _exchange(port, b"HEAD /metrics HTTP/1.0\r\n\r\n")  # 1.0: closed after one answer
    assert head.startswith(b"HTTP/1.1 200 ") and head.endswith(b"\r\n\r\n")
    assert f"Content-Length: {len(big)}".encode() in head
    # A request with a body is answered, then the connection closes (the body is never read as a request).
    answer = _exchange(port, b"GET /healthz HTTP/1.1\r\nContent-Length: 5\r\n\r\nGET /")
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b'{"status": "ok"}')
    # Pipelined requests are answered in order; Connection: close ends the exchange.
    answer = _exchange(port, b"GET /nope HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 404 ") and b"HTTP/1.1 200 " in answer and answer.endswith(b"</html>")
    # A head past MAX_HEAD is dropped unanswered.
    assert _exchange(port, b"GET /" + b"a" * (http_server.MAX_HEAD + 10)) == b""


def test_huge_response_to_a_slow_reader_arrives_whole(small_server) -> None:  # type: ignore[no-untyped-def]
    server, big = small_server
    with socket.create_connection(("127.0.0.1", server.port), timeout=3) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        time.sleep(0.3)  # the server's writes back up: it must pause, not drop or spin
        received = bytearray()
        while chunk := s.recv(1 << 20):
            received += chunk
    assert len(received) > len(big) and received.count(b"HTTP/1.1 200 ") == 2
    assert received.endswith(b"</html>")


def test_idle_kept_alive_connection_is_closed_after_the_idle_timeout(small_server) -> None:  # type: ignore[no-untyped-def]
    server, _ = small_server
    with socket.create_connection(("127.0.0.1", server.port), timeout=3) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 200 ")
        time.sleep(0.7)  # past the header timeout, within the idle one: still open
        s.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 200 ")
        started = time.monotonic()
        assert s.recv(1) == b""
        assert 0.8 < time.monotonic() - started < 2.5


def test_connections_past_the_limit_are_closed_at_once(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(http_server, "MAX_CONNECTIONS", 5)
    server = MetricsServer("127.0.0.1", 0, lambda: b"up 1\n", lambda: {"status": "ok"})
    server.start()
    held = [socket.create_connection(("127.0.0.1", server.port), timeout=3) for _ in range(5)]
    try:
        time.sleep(0.2)
        assert _exchange(server.port, b"GET /metrics HTTP/1.1\r\n\r\n") == b""
        held.pop().close()
        time.sleep(0.2)
        assert _exchange(server.port, b"GET /metrics HTTP/1.0\r\n\r\n").endswith(b"up 1\n")
    finally:
        for s in held:
            s.close()
        server.stop()
