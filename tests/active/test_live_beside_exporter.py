"""Issue 14: the live validation suite runs beside a live exporter (its scheduled order probes on)
against the same Gateway, and neither disturbs the other: both pass, nothing is refused with 326,
and the suite's JUnit result is complete.

The suite is run as an operator runs it against a real Gateway (``--gateway HOST:PORT``), here a
simulator, so its real-Gateway branches (no fault injection) are the ones exercised.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families
from support.active import held, open_orders

from gatewatch.localstack.net import free_port
from probes.active.runner import PROBES
from simulator import running_simulator

ROOT = Path(__file__).resolve().parents[2]

# error 326 as a code, not the milliseconds of a log timestamp (17:05:51.326)
CLIENT_ID_IN_USE = re.compile(r"(?<![.\d])326(?!\d)")


def _active_runs(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    runs = {"success": 0.0, "failure": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "gatewatch_probe_runs_total" and sample.labels.get("kind") == "active":
                runs[sample.labels["result"]] += sample.value
    return runs


async def _until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not seen within {timeout:g} s"
        await asyncio.sleep(0.25)


async def test_live_suite_beside_a_running_exporter_both_pass(tmp_path):
    with running_simulator(account="DU1234567", seed=3, symbols=["SPY", "QQQ", "IWM"], tick_hz=4.0,
                           market="open", starting_cash=1_000_000.0) as sim:
        config = tmp_path / "gatewatch.yaml"
        config.write_text(yaml.safe_dump({
            "gateway": {"host": "127.0.0.1", "port": sim.port, "paper_ports": [sim.port], "connect_timeout": 5,
                        "request_timeout": 5, "reconnect_initial": 0.2, "reconnect_max": 1},
            "probes": {"quote_stale_after": 2, "historical": {"interval": 20}},
            "active": {"enabled": True, "interval": 2, "market_hours_only": False, "fill_timeout": 5,
                       "cancel_timeout": 5, "close_retry_wait": 0.3, "stream_test_duration": 3,
                       "journal_path": str(tmp_path / "probe-journal.sqlite")},
        }))
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        log_path = tmp_path / "exporter.log"
        log_file = log_path.open("wb")
        exporter = subprocess.Popen(
            [sys.executable, "-m", "gatewatch", "exporter", "--config", str(config), "--listen", f"127.0.0.1:{port}"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log_file)  # a file: a pipe nobody reads fills
        try:
            await _until(lambda: _try_runs(port)["success"] >= 1, 60, "the exporter's first active probe run")
            before = _active_runs(port)
            junit = tmp_path / "live.xml"
            suite = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", "tests/live_validation",
                 "--gateway", f"127.0.0.1:{sim.port}", "--gateway-config", str(config), "--junitxml", str(junit),
                 "--sim-control", f"http://127.0.0.1:{sim.control_port}"],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
            during = _active_runs(port)
            # one whole run of every probe done: on a loaded machine the suite can end first
            await _until(lambda: _try_runs(port)["success"] >= len(PROBES), 90, "the exporter's first whole run")
            runs = _active_runs(port)
        finally:
            exporter.send_signal(signal.SIGTERM)
            exporter.wait(timeout=60)
            log_file.close()
        log = log_path.read_text(errors="replace")
        assert suite.returncode == 0, suite.stdout[-3000:] + suite.stderr[-2000:]
        root = ET.parse(junit).getroot()
        cases = list(root.iter("testcase"))
        assert len(cases) == 16
        assert not [c.get("name") for c in cases if c.find("failure") is not None or c.find("error") is not None]
        assert runs["failure"] == 0, f"the exporter's probes failed beside the suite: {runs}\n{log[-3000:]}"
        assert during["success"] > before["success"], f"no probe ran beside the suite: {before} -> {during}"
        assert not CLIENT_ID_IN_USE.search(log) and not CLIENT_ID_IN_USE.search(suite.stdout + suite.stderr)
        assert open_orders(sim) == [] and held(sim) == {}, "something was left behind"


def _try_runs(port: int) -> dict[str, float]:
    try:
        return _active_runs(port)
    except OSError:
        return {"success": 0.0, "failure": 0.0}
