"""``gatewatch probe run`` (table, JUnit, exit code) and the scheduled mode inside the exporter."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from support.active import held, open_orders, real_orders

from exporter.metrics import Metrics
from gatewatch.config import GatewatchConfig
from gatewatch.localstack.net import free_port
from probes.active.runner import PROBES
from probes.active.schedule import run_schedule
from simulator import running_simulator

ROOT = Path(__file__).resolve().parents[2]


def _write_config(config: GatewatchConfig, path: Path) -> Path:
    path.write_text(config.model_dump_json())  # JSON is YAML
    return path


def _probe_run(config_path: Path, junit: Path, *only: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "gatewatch", "probe", "run", "--config", str(config_path), "--junit", str(junit)]
    if only:
        command += ["--only", *only]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=90,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def _junit_cases(path: Path) -> tuple[ET.Element, dict[str, ET.Element]]:
    suite = ET.parse(path).getroot()
    assert suite.tag == "testsuite"
    return suite, {case.get("name", ""): case for case in suite.iter("testcase")}


def _table_rows(stdout: str) -> dict[str, str]:
    """probe name -> PASS/FAIL from the printed table."""
    rows = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in PROBES and parts[1] in ("PASS", "FAIL"):
            rows[parts[0]] = parts[1]
    return rows


async def test_probe_run_all_pass_prints_table_writes_junit_exits_0(sim, config_for, tmp_path):
    junit = tmp_path / "reports" / "probes.xml"
    result = await asyncio.to_thread(_probe_run, _write_config(config_for(sim), tmp_path / "gw.yaml"), junit)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert _table_rows(result.stdout) == dict.fromkeys(PROBES, "PASS")
    assert f"{len(PROBES)}/{len(PROBES)} passed" in result.stdout
    suite, cases = _junit_cases(junit)
    assert suite.get("tests") == str(len(PROBES)) and suite.get("failures") == "0"
    assert list(cases) == list(PROBES)
    assert all(case.find("failure") is None for case in cases.values())
    assert all(float(case.get("time", "-1")) >= 0 for case in cases.values())
    assert open_orders(sim) == [] and held(sim) == {}


async def test_probe_run_exits_1_and_junit_names_the_failed_probe(sim, config_for, tmp_path):
    sim.inject({"fault": "reject_next_order", "reason": "simulated risk check"})
    junit = tmp_path / "probes.xml"
    config_path = _write_config(config_for(sim), tmp_path / "gw.yaml")
    result = await asyncio.to_thread(_probe_run, config_path, junit, "fill", "cancel")
    assert result.returncode == 1, result.stdout + result.stderr[-2000:]
    assert _table_rows(result.stdout) == {"fill": "FAIL", "cancel": "PASS"}
    suite, cases = _junit_cases(junit)
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    failure = cases["fill"].find("failure")
    assert failure is not None and "simulated risk check" in (failure.text or "")
    assert cases["cancel"].find("failure") is None


async def test_probe_run_on_a_live_account_exits_1_and_sends_nothing(config_for, tmp_path):
    with running_simulator(port=0, control_port=0, account="U1234567", seed=1, symbols=["SPY"]) as live:
        junit = tmp_path / "probes.xml"
        config_path = _write_config(config_for(live), tmp_path / "gw.yaml")
        result = await asyncio.to_thread(_probe_run, config_path, junit, "fill")
        assert result.returncode == 1
        _, cases = _junit_cases(junit)
        failure = cases["fill"].find("failure")
        assert failure is not None and "account_not_paper" in (failure.text or "")
        assert live.state()["orders"] == []


def _sample(metrics: Metrics, name: str, labels: dict[str, str] | None = None) -> float:
    return metrics.registry.get_sample_value(name, labels or {}) or 0.0


async def _wait_for(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def test_schedule_publishes_and_stops_through_its_event(sim, config_for):
    config = config_for(sim, interval=0.5)
    metrics, stop = Metrics(), asyncio.Event()
    task = asyncio.create_task(run_schedule(config, metrics, stop, backoff_base=0.05))
    fill_ok = {"probe": "fill", "kind": "active", "result": "success"}
    await _wait_for(lambda: _sample(metrics, "gatewatch_probe_runs_total", fill_ok) >= 2, 40)
    stop.set()
    await asyncio.wait_for(task, probe_stop_bound(config))
    assert task.exception() is None
    for name in PROBES:
        assert _sample(metrics, "gatewatch_probe_success", {"probe": name, "kind": "active"}) == 1, name
    assert _sample(metrics, "gatewatch_order_fill_latency_seconds_count") >= 2
    assert _sample(metrics, "gatewatch_probe_open_orders") == 0
    assert _sample(metrics, "gatewatch_probe_positions") == 0
    assert open_orders(sim) == [] and held(sim) == {}
    sent = len(real_orders(sim))
    await asyncio.sleep(config.active.interval + 0.5)
    assert len(real_orders(sim)) == sent, "the schedule kept sending after stop"


def probe_stop_bound(config: GatewatchConfig) -> float:
    """Stop lands after the probe in flight and the clean-up: a few fill/cancel waits at most."""
    return 4 * config.active.fill_timeout + 10


async def test_schedule_pauses_outside_market_hours(sim, config_for):
    config = config_for(sim, interval=0.2, market_hours_only=True)
    metrics, stop = Metrics(), asyncio.Event()
    task = asyncio.create_task(run_schedule(config, metrics, stop, is_open=lambda _: False))
    await asyncio.sleep(1.0)
    stop.set()
    await asyncio.wait_for(task, 2)
    assert sim.state()["orders"] == []
    assert _sample(metrics, "gatewatch_probe_runs_total", {"probe": "fill", "kind": "active", "result": "success"}) == 0



def _scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_exporter_runs_the_schedule_and_serves_it_on_metrics(sim, config_for, tmp_path):
    config = config_for(sim, enabled=True, interval=1)
    raw = config.model_dump(mode="json")
    raw["exporter"]["listen"] = f"127.0.0.1:{(port := free_port())}"
    config_path = tmp_path / "gw.yaml"
    _write_config(GatewatchConfig.model_validate(raw), config_path)
    proc = subprocess.Popen([sys.executable, "-m", "gatewatch", "exporter", "--config", str(config_path)],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    fill_labels = {"probe": "fill", "kind": "active", "result": "success"}
    fill_ok = ("gatewatch_probe_runs_total", frozenset(fill_labels.items()))
    try:
        seen: list[float] = []
        deadline = time.monotonic() + 45
        while len(set(seen)) < 2:
            assert proc.poll() is None, f"exporter exited: {proc.stderr.read() if proc.stderr else ''}"
            assert time.monotonic() < deadline, f"active runs not seen moving on /metrics: {seen}"
            await asyncio.sleep(0.5)
            try:
                samples = await asyncio.to_thread(_scrape, port)
            except OSError:
                continue
            if samples.get(fill_ok, 0) >= 1:
                seen.append(samples[fill_ok])
        for name in PROBES:
            assert samples[("gatewatch_probe_success", frozenset({"probe": name, "kind": "active"}.items()))] == 1
        assert samples[("gatewatch_order_fill_latency_seconds_count", frozenset())] >= 1
        assert samples[("gatewatch_probe_orders_total", frozenset({"action": "buy"}.items()))] >= 1
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
