"""Issue 15: an operator's log shows errors only when something is wrong.

A probe run whose probes provoke API errors on purpose (the reject probe's 201, the cancel race's
161, close_retry's escalation) logs no ERROR line and no raw ``Canceled order: Trade(...)`` dump.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_passing_probe_run_logs_no_error(sim, config_for, tmp_path):
    path = tmp_path / "gw.yaml"
    path.write_text(config_for(sim).model_dump_json())
    result = subprocess.run(
        [sys.executable, "-m", "gatewatch", "probe", "run", "--config", str(path), "--only", "reject", "cancel_race",
         "close_retry", "error_recovery"],
        capture_output=True, text=True, cwd=ROOT, timeout=90, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4/4 passed" in result.stdout
    log = result.stderr
    assert "close escalation" in log.lower(), "the escalation path was not exercised"
    noisy = [line for line in log.splitlines() if " ERROR " in line or "Canceled order" in line
             or line.startswith(("Error ", "Warning "))]
    assert noisy == [], "\n".join(noisy)
