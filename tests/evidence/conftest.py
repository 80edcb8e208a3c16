"""A real recorded session for the evidence tests: simulator → real exporter → real Prometheus.

Module-scoped (and shared by the tests in this folder) because recording costs wall-clock time:
about 20 s healthy, then an injected Gateway outage, each judged as its own window.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from gatewatch.evidence.prometheus_api import PrometheusClient, PrometheusError
from gatewatch.localstack.configs import Timing, render_prometheus_config
from gatewatch.localstack.net import free_port
from gatewatch.localstack.servers import running_prometheus

ROOT = Path(__file__).resolve().parents[2]
SESSION_SECONDS = 20



def connected(api: PrometheusClient, expr: str, value: float) -> bool:
    return any(v == value for _, v in api.query(expr, time.time()))


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (OSError, PrometheusError):
            pass
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class RecordedSession:
    prometheus: str
    healthy: tuple[float, float]
    outage: tuple[float, float]
    config: Path
    folder: Path


@pytest.fixture(scope="module")
def recorded_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordedSession]:
    if shutil.which("prometheus") is None:
        pytest.skip("the prometheus binary is not installed (Debian package prometheus)")
    from simulator import running_simulator

    folder = tmp_path_factory.mktemp("session")
    exporter_port = free_port()
    with running_simulator(account="DU1234567", seed=3, symbols=["SPY", "QQQ"], tick_hz=4.0, market="open") as sim:
        config = {
            "gateway": {
                "port": sim.port,
                "paper_ports": [sim.port],
                "connect_timeout": "3s",
                "request_timeout": "3s",
                "reconnect_initial": "0.5s",
                "reconnect_max": "1s",
            },
            "exporter": {"listen": f"127.0.0.1:{exporter_port}"},
            "probes": {
                "symbols": ["SPY", "QQQ"],
                "heartbeat_interval": "1s",
                "clock_interval": "1.5s",
                "account_interval": "2s",
                "reconciliation_interval": "5s",
                "process_interval": "1s",
                "historical": {"enabled": False},
            },
            "session": {"required_duration": f"{SESSION_SECONDS}s"},
        }
        config_path = folder / "gatewatch.yaml"
        config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        exporter = subprocess.Popen(
            [sys.executable, "-m", "gatewatch", "exporter", "--config", str(config_path)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=open(folder / "exporter.log", "wb"),  # noqa: SIM115
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        # the shipped prometheus.yml and rules (shipped for:), 1 s scrapes and evaluation, no Alertmanager
        prom_config = render_prometheus_config(folder / "prom", exporter=f"127.0.0.1:{exporter_port}",
                                               timing=Timing(interval=1.0))
        try:
            with running_prometheus(prom_config, folder, timeout=30) as prometheus:
                url, api = prometheus.url, prometheus.api
                wait_until(
                    lambda: connected(api, 'up{job="gatewatch"}', 1.0),
                    30,
                    "the exporter scraped",
                )
                wait_until(
                    lambda: connected(api, "gatewatch_gateway_connected", 1.0),
                    30,
                    "the exporter connected to the simulator",
                )
                wait_until(lambda: api.query("gatewatch:clock_skew:abs_seconds", time.time()), 30,
                           "a clock-skew sample")
                healthy_start = time.time() + 1
                time.sleep(SESSION_SECONDS + 2)
                healthy_end = time.time()
                outage_start = healthy_end
                # not in the window's first seconds: increase() needs a sample before the event inside it
                time.sleep(3)
                sim.inject({"fault": "disconnect", "for": 4})
                wait_until(
                    lambda: connected(api, "gatewatch_gateway_connected", 0.0),
                    20,
                    "Prometheus to see the outage",
                )
                wait_until(
                    lambda: connected(api, "gatewatch_gateway_connected", 1.0),
                    30,
                    "the exporter to reconnect",
                )
                remaining = SESSION_SECONDS + 1 - (time.time() - outage_start)
                time.sleep(max(2.0, remaining))
                outage_end = time.time()
                yield RecordedSession(url, (healthy_start, healthy_end), (outage_start, outage_end), config_path,
                                      folder)
        finally:
            exporter.terminate()
            try:
                exporter.wait(timeout=10)
            except subprocess.TimeoutExpired:
                exporter.kill()
                exporter.wait()
