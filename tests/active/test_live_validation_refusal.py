"""The live validation suite refuses the whole session, before any order, unless the target is paper.

Each case runs ``pytest tests/live_validation --gateway ...`` as the operator would, against a
simulator posing as a Gateway that must not be traded on.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulator import running_simulator

ROOT = Path(__file__).resolve().parents[2]


def run_suite(tmp_path: Path, port: int, gateway: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "gatewatch.yaml"
    config.write_text(yaml.safe_dump({
        "gateway": {"connect_timeout": 5, "request_timeout": 5, **gateway},
        "active": {"journal_path": str(tmp_path / "journal.sqlite")},
    }))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/live_validation",
         "--gateway", f"127.0.0.1:{port}", "--gateway-config", str(config)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(("account", "gateway", "reason"), [
    ("U1234567", {"paper_ports": "PORT"}, "do not start with D: this Gateway is logged into a LIVE account"),
    ("DU1234567", {}, "is not in gateway.paper_ports"),
    ("DU1234567", {"paper": False, "paper_ports": "PORT"}, "gateway.paper is false"),
])
def test_session_refused_unless_paper(tmp_path: Path, account: str, gateway: dict[str, Any], reason: str) -> None:
    with running_simulator(account=account, seed=1, symbols=["SPY", "QQQ", "IWM"], market="open") as sim:
        settings = {k: ([sim.port] if v == "PORT" else v) for k, v in gateway.items()}
        result = run_suite(tmp_path, sim.port, settings)
        state = sim.state()
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert "live validation refused" in out and reason in out, out
    assert " passed" not in out, "a test ran although the session was refused"
    assert state["orders"] == [] and state["executions"] == []


def test_bad_gateway_config_names_the_field(tmp_path: Path) -> None:
    config = tmp_path / "gatewatch.yaml"
    config.write_text("active:\n  stream_test_duraton: 60s\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/live_validation",
         "--gateway", "127.0.0.1:4002", "--gateway-config", str(config)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert "active.stream_test_duraton: unknown key" in out, out
