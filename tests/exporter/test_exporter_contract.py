"""The metric contract (golden file), promtool's lint of a real scrape, and the command line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.exporter import fast_config, parse, running_exporter

from exporter.metrics import CONTRACT
from gatewatch.localstack.net import free_port
from simulator import running_simulator

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "metrics.txt"
UPDATE_ENV = "GATEWATCH_UPDATE_GOLDEN"


def _defined_labels() -> dict[str, tuple[str, ...]]:
    """Label names as the contract declares them (a scrape omits unused label sets)."""
    return {spec.name: spec.labels for spec in CONTRACT}


def contract_from_scrape(text: str) -> str:
    """One line per metric family: name, type, label names, help text. Values stripped."""
    defined = _defined_labels()
    lines = []
    for family in text_string_to_metric_families(text):
        labels = defined.get(family.name)
        if labels is None:
            seen = {k for s in family.samples for k in s.labels if k not in ("le", "quantile")}
            labels = tuple(sorted(seen))
        lines.append(f"{family.name} {family.type} [{','.join(labels)}] {family.documentation}")
    return "\n".join(sorted(lines)) + "\n"


async def _scrape_text() -> str:
    with running_simulator(account="DU1234567", seed=1, market="open") as sim:
        async with running_exporter(fast_config(sim.port)) as exporter:
            await exporter.wait_for("gatewatch_probe_success", lambda v: v == 1, probe="quotes", kind="passive")
            return (await exporter.get("/metrics"))[1]


async def test_metric_contract_matches_golden_file() -> None:
    contract = contract_from_scrape(await _scrape_text())
    if os.environ.get(UPDATE_ENV):
        GOLDEN.write_text(contract)
    assert GOLDEN.exists(), f"golden file missing: run with {UPDATE_ENV}=1 to create {GOLDEN}"
    assert contract == GOLDEN.read_text(), (
        f"the exported metrics changed; if intended, regenerate with {UPDATE_ENV}=1 and update rules/dashboards")


async def test_promtool_accepts_a_real_scrape() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    text = await _scrape_text()
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("yaml_text", "field"),
    [
        ("probes:\n  symbolz: [SPY]\n", "probes.symbolz"),
        ("gateway:\n  port: not-a-port\n", "gateway.port"),
        ("probes:\n  historical:\n    interval: 5s\n", "probes.historical"),
    ],
)
def test_bad_config_exits_2_naming_the_field(tmp_path: Path, yaml_text: str, field: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml_text)
    result = subprocess.run([sys.executable, "-m", "gatewatch", "exporter", "--config", str(bad)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    assert result.returncode == 2, result.stderr
    assert field in result.stderr and str(bad) in result.stderr


def test_bad_listen_address_exits_2(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "gatewatch", "exporter", "--listen", "localhost"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    assert result.returncode == 2 and "--listen" in result.stderr



def test_container_entry_commands_work_together(tmp_path: Path) -> None:
    """``python -m simulator`` and ``python -m gatewatch exporter`` as separate processes, as in the stack."""
    sim_port, control_port, listen_port = free_port(), free_port(), free_port()
    env = {**os.environ, "GATEWATCH_GATEWAY": f"127.0.0.1:{sim_port}"}
    config = tmp_path / "gatewatch.yaml"
    config.write_text("exporter:\n  log_json: true\n")
    sim = subprocess.Popen([sys.executable, "-m", "simulator", "--port", str(sim_port), "--control-port",
                            str(control_port), "--account", "DU1234567", "--seed", "1"], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    exporter = subprocess.Popen([sys.executable, "-m", "gatewatch", "exporter", "--config", str(config),
                                 "--listen", f"127.0.0.1:{listen_port}"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        samples: dict = {}
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{listen_port}/metrics", timeout=2) as resp:
                    samples = parse(resp.read().decode())
            except OSError:
                samples = {}
            if samples.get(("gatewatch_gateway_connected", frozenset())) == 1 and samples.get(
                    ("gatewatch_probe_success", frozenset({("probe", "quotes"), ("kind", "passive")}))) == 1:
                break
            time.sleep(0.25)
        assert samples.get(("gatewatch_gateway_connected", frozenset())) == 1
        with urllib.request.urlopen(f"http://127.0.0.1:{listen_port}/healthz", timeout=2) as resp:
            assert resp.status == 200
    finally:
        exporter.terminate()
        _, stderr = exporter.communicate(timeout=10)
        sim.terminate()
        sim.wait(timeout=10)
    assert exporter.returncode == 0
    assert '"message": "gateway 127.0.0.1:' in stderr  # JSON log lines (exporter.log_json)
