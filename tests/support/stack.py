"""Helpers (no tests here): start ``gatewatch stack`` on free loopback ports, query its Prometheus.

Shared by the dashboard test (which needs a real Prometheus scraping a real exporter connected to
the simulator) and the native-stack tests, so both exercise the very command operators run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gatewatch.localstack import net
from gatewatch.localstack.net import free_port

ROOT = Path(__file__).resolve().parents[2]



def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """:func:`gatewatch.localstack.net.http_get`, with status 0 when nothing answers (tests poll with it)."""
    try:
        return net.http_get(url, timeout)
    except OSError:
        return 0, b""


def wait_until(predicate: Any, timeout: float, interval: float = 0.3) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


@dataclass
class StackRun:
    process: subprocess.Popen[str]
    exporter: str
    prometheus: str
    sim_port: int
    control_port: int
    data_dir: Path
    output_path: Path

    def output(self) -> str:
        return self.output_path.read_text(encoding="utf-8", errors="replace")

    def query(self, expr: str) -> dict[str, Any]:
        """Prometheus instant query; returns the parsed JSON (status, data or error)."""
        url = f"http://{self.prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        _, body = http_get(url, timeout=5)
        return dict(json.loads(body))

    def query_range(self, expr: str, seconds: int, step: str = "1s") -> dict[str, Any]:
        now = time.time()
        url = f"http://{self.prometheus}/api/v1/query_range?" + urllib.parse.urlencode(
            {"query": expr, "start": now - seconds, "end": now, "step": step})
        _, body = http_get(url, timeout=5)
        return dict(json.loads(body))

    def target_up(self) -> bool:
        result = self.query('up{job="gatewatch"}')
        return any(s["value"][1] == "1" for s in result.get("data", {}).get("result", []))

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def require_prometheus() -> None:
    import pytest

    if shutil.which("prometheus") is None:
        pytest.skip("the prometheus binary is not installed (scripts/test.sh installs Debian's package)")


def start_stack(tmp: Path, *extra: str, scrape_interval: str = "1s",
                extra_env: dict[str, str] | None = None) -> StackRun:
    """Run ``gatewatch stack`` with a config of free ports; returns once it printed its URLs."""
    sim_port, control_port, exporter_port, prom_port, bot_port, proxy_port, fault_port = (
        free_port() for _ in range(7))
    config = tmp / "gatewatch.yaml"
    bot_positions = tmp / "bot-positions.json"
    bot_positions.write_text('{"SPY": 0}', encoding="utf-8")  # a flat bot: drift series exist, all 0
    config.write_text(
        f"gateway: {{host: 127.0.0.1, port: {sim_port}}}\n"
        f"exporter: {{listen: 127.0.0.1:{exporter_port}}}\n"
        f"proxy: {{listen: 127.0.0.1:{bot_port}, metrics_listen: 127.0.0.1:{proxy_port}, control_port: {fault_port}}}\n"
        "probes: {clock_interval: 1.5s, account_interval: 2s, reconciliation_interval: 2s,"
        f" process_interval: 1s, heartbeat_interval: 1s, bot_positions_file: {bot_positions}}}\n",
        encoding="utf-8")
    env = {k: v for k, v in os.environ.items()
           if k != "GATEWATCH_GATEWAY" and not k.startswith(("GATEWATCH_SMTP_", "GATEWATCH_ALERT_"))}
    env.update(extra_env or {})
    output_path = tmp / "stack.out"
    argv = [sys.executable, "-m", "gatewatch", "stack", "--config", str(config), "--data-dir", str(tmp / "data"),
            "--prometheus-listen", f"127.0.0.1:{prom_port}", "--sim-control-port", str(control_port),
            "--scrape-interval", scrape_interval, *extra]
    with output_path.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    run = StackRun(process, f"127.0.0.1:{exporter_port}", f"127.0.0.1:{prom_port}", sim_port, control_port,
                   tmp / "data", output_path)
    if not wait_until(lambda: "gatewatch stack is up" in run.output() or process.poll() is not None, 60):
        run.stop()
        raise AssertionError(f"gatewatch stack did not come up:\n{run.output()}")
    if process.poll() is not None:
        raise AssertionError(f"gatewatch stack exited with {process.returncode}:\n{run.output()}")
    return run
