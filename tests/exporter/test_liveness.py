"""A Gateway that stops answering is declared down by a check nothing can block, and found again at
once when it answers; a Gateway whose API answers without a session reads "not logged in"."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from support.exporter import fast_config, parse, running_exporter

from gatewatch.localstack.net import free_port
from probes.gateway import GatewayState
from simulator import running_simulator
from simulator.wire import encode

ROOT = Path(__file__).resolve().parents[2]
STATE = "gatewatch_gateway_state"


async def _until(condition, timeout: float, what: str) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"{what} not within {timeout:g} s"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def test_stalled_gateway_is_declared_down_while_the_time_lock_is_held_and_found_again() -> None:
    with running_simulator(account="DU1234567", seed=1, market="open") as sim:
        async with running_exporter(fast_config(sim.port)) as exporter:
            session = exporter.app.session
            await _until(lambda: session.connected, 10, "first connection")
            lock = exporter.app.time_requester._lock
            await lock.acquire()  # the heartbeat and clock probes now wait on it, as behind a slow clock probe
            try:
                sim.inject({"fault": "stall", "for": "6s"})
                stalled_at = time.monotonic()
                await _until(lambda: not session.connected, 20, "declared down")
                assert session.state == GatewayState.NOT_ANSWERING
                samples = await exporter.scrape()
                assert samples[("gatewatch_gateway_connected", frozenset())] == 0
                assert samples[(STATE, frozenset({("state", "not_answering")}))] == 1
            finally:
                lock.release()
            back_at = stalled_at + 6
            await _until(lambda: session.connected, back_at - time.monotonic() + 5, "reconnected 5 s after")
            assert session.state == GatewayState.CONNECTED


async def test_a_streaming_gateway_never_wakes_the_liveness_watch() -> None:
    """Quotes every 250 ms keep the watch's timer ahead of them: over four half-limits it never
    fires (it used to wake every half limit to find bytes had come), and silence is still caught."""
    with running_simulator(account="DU1234567", seed=1, market="open") as sim:
        async with running_exporter(fast_config(sim.port)) as exporter:
            session = exporter.app.session
            await _until(lambda: session.connected, 10, "first connection")
            await asyncio.sleep(1.0)  # subscriptions made: the quote streams are flowing
            checks = session.liveness_checks
            await asyncio.sleep(4 * session.liveness_timeout / 2)
            assert session.liveness_checks == checks, "the watch woke while bytes were flowing"
            sim.inject({"fault": "stall", "for": "6s"})
            stalled_at = time.monotonic()
            await _until(lambda: not session.connected, 10, "declared down")
            assert time.monotonic() - stalled_at < session.liveness_timeout + 1
            assert session.liveness_checks > checks


def _metrics(port: int) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
        return parse(resp.read().decode())


def _wait_metric(port: int, value: float, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if _metrics(port).get(("gatewatch_gateway_connected", frozenset())) == value:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"gatewatch_gateway_connected never {value} within {timeout} s")


def test_sigstopped_gateway_then_killed_the_exporter_still_reconnects_logs_and_stops(tmp_path: Path) -> None:
    """A real freeze (SIGSTOP of the simulator process), a thaw, then a kill: the exporter declares
    it down, reconnects, keeps trying, and still stops on SIGTERM."""
    sim_port, listen = free_port(), free_port()
    config = tmp_path / "gatewatch.yaml"
    config.write_text(f"gateway:\n  port: {sim_port}\n  connect_timeout: 2s\n  request_timeout: 2s\n")
    sim_cmd = [sys.executable, "-m", "simulator", "--port", str(sim_port), "--control-port", "-1", "--seed", "1"]
    sim = subprocess.Popen(sim_cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {k: v for k, v in os.environ.items() if k != "GATEWATCH_GATEWAY"}
    exporter = subprocess.Popen([sys.executable, "-m", "gatewatch", "exporter", "--config", str(config),
                                 "--listen", f"127.0.0.1:{listen}"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_metric(listen, 1, 30)
        os.kill(sim.pid, signal.SIGSTOP)
        down = _wait_metric(listen, 0, 20)
        os.kill(sim.pid, signal.SIGCONT)
        back = _wait_metric(listen, 1, 5)
        sim.kill()
        sim.wait(timeout=10)
        _wait_metric(listen, 0, 20)
        time.sleep(2.5)
        attempts = _metrics(listen)[("gatewatch_gateway_reconnect_attempts_total", frozenset())]
        time.sleep(2.5)
        assert _metrics(listen)[("gatewatch_gateway_reconnect_attempts_total", frozenset())] > attempts, (
            "the exporter stopped retrying")
        exporter.send_signal(signal.SIGTERM)
        _, stderr = exporter.communicate(timeout=15)
    finally:
        for proc in (exporter, sim):
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    assert exporter.returncode == 0, stderr[-2000:]
    assert "declared down" in stderr and "exporter stopping" in stderr
    assert down < 20 and back < 5


async def _api_without_session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A Gateway's API with no logged-in session: it answers the handshake, then no account, no id."""
    try:
        await reader.readexactly(4)  # "API\0"
        size = int.from_bytes(await reader.readexactly(4), "big")
        await reader.readexactly(size)
        writer.write(encode([178, "20261201 15:00:00 UTC"]))
        await writer.drain()
        await reader.read()  # startApi and whatever follows: never answered
    finally:
        writer.close()


async def test_a_gateway_up_but_not_logged_in_is_its_own_state() -> None:
    server = await asyncio.start_server(_api_without_session, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, running_exporter(fast_config(port)) as exporter:
        session = exporter.app.session
        await _until(lambda: session.state == GatewayState.NOT_LOGGED_IN, 15, "not_logged_in state")
        samples = await exporter.scrape()
        assert samples[(STATE, frozenset({("state", "not_logged_in")}))] == 1
        assert samples[(STATE, frozenset({("state", "refused")}))] == 0
        assert samples[("gatewatch_gateway_connected", frozenset())] == 0
    port_closed = free_port()
    async with running_exporter(fast_config(port_closed)) as exporter:
        await _until(lambda: exporter.app.session.state == GatewayState.REFUSED, 10, "refused state")


async def test_a_5s_outage_is_measured_within_2s_of_what_it_was() -> None:
    """Cheap, frequent connection attempts: the downtime measured is the outage, not the back-off."""
    with running_simulator(account="DU1234567", seed=1, market="open") as sim:
        config = fast_config(sim.port)
        config.gateway.reconnect_initial, config.gateway.reconnect_max = 1.0, 60.0  # as shipped
        async with running_exporter(config) as exporter:
            session = exporter.app.session
            await _until(lambda: session.connected, 10, "first connection")
            sim.inject({"fault": "disconnect", "for": "5s"})
            await _until(lambda: not session.connected, 5, "the loss seen")
            down = await _until(lambda: session.connected, 15, "reconnected")
            assert abs(down - 5) < 2, f"measured {down:.2f} s of downtime for a 5 s outage"
            assert session.state == GatewayState.CONNECTED
