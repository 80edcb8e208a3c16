"""A real recorded session for the evidence tests: simulator → real exporter → real Prometheus.

Module-scoped (and shared by the tests in this folder) because recording costs wall-clock time:
about 20 s healthy, then an injected Gateway outage, each judged as its own window.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from gatewatch.localstack.net import free_port

ROOT = Path(__file__).resolve().parents[2]
SESSION_SECONDS = 20



def prom_query(url: str, expr: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=5) as response:
        return list(json.loads(response.read())["data"]["result"])


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def start_prometheus(folder: Path, exporter_port: int) -> tuple[subprocess.Popen[bytes], str]:
    """Real Prometheus on a loopback port, 1 s scrapes and rule evaluation, the project's rule files."""
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in sorted((ROOT / "prometheus" / "rules").glob("*.yml"))],
        "scrape_configs": [{"job_name": "gatewatch", "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}]}],
    }
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    process = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(folder / "prometheus.log", "wb"),  # noqa: SIM115
    )
    return process, f"http://127.0.0.1:{port}"


@dataclass
class RecordedSession:
    prometheus: str
    healthy: tuple[float, float]
    outage: tuple[float, float]
    config: Path
    folder: Path


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


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
        prometheus, url = start_prometheus(folder, exporter_port)
        try:
            wait_until(
                lambda: urllib.request.urlopen(f"{url}/-/ready", timeout=2).status == 200,
                30,
                "Prometheus ready",
            )
            wait_until(
                lambda: any(r["value"][1] == "1" for r in prom_query(url, 'up{job="gatewatch"}')),
                30,
                "the exporter scraped",
            )
            wait_until(
                lambda: any(r["value"][1] == "1" for r in prom_query(url, "gatewatch_gateway_connected")),
                30,
                "the exporter connected to the simulator",
            )
            wait_until(lambda: prom_query(url, "gatewatch:clock_skew:abs_seconds"), 30, "a clock-skew sample")
            healthy_start = time.time() + 1
            time.sleep(SESSION_SECONDS + 2)
            healthy_end = time.time()
            outage_start = healthy_end
            # not in the window's first seconds: increase() needs a sample before the event inside it
            time.sleep(3)
            sim.inject({"fault": "disconnect", "for": 4})
            wait_until(
                lambda: any(r["value"][1] == "0" for r in prom_query(url, "gatewatch_gateway_connected")),
                20,
                "Prometheus to see the outage",
            )
            wait_until(
                lambda: any(r["value"][1] == "1" for r in prom_query(url, "gatewatch_gateway_connected")),
                30,
                "the exporter to reconnect",
            )
            remaining = SESSION_SECONDS + 1 - (time.time() - outage_start)
            time.sleep(max(2.0, remaining))
            outage_end = time.time()
            yield RecordedSession(url, (healthy_start, healthy_end), (outage_start, outage_end), config_path, folder)
        finally:
            _stop(prometheus)
            _stop(exporter)
