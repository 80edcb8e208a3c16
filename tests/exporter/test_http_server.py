"""The HTTP endpoint under load: a crowd of scrapers all answered in time, half-sent requests held
without a thread each and dropped after the header timeout."""

from __future__ import annotations

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
