"""A calm rehearsal (nothing goes wrong) must pass every gate with the broker's books clean.

If this fails, the monitor itself produces false alarms: a session on a healthy paper Gateway
would be judged a failure.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.rehearsal import Scraper, alert_intervals

from gatewatch.localstack.net import free_port
from gatewatch.localstack.process import REPO_ROOT
from gatewatch.rehearsal.runner import Rehearsal, RehearsalOptions

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not (shutil.which("prometheus") and shutil.which("prometheus-alertmanager")),
                       reason="needs the prometheus and prometheus-alertmanager binaries"),
]

MACHINE_WIDE_ALERTS = {"HostCpuHigh", "HostMemoryHigh"}


def test_calm_session_passes_with_clean_books(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Also: GATEWATCH_GATEWAY in the environment does not leak into the rehearsal (it only ever
    watches its own simulator), and the rehearsal's Prometheus data gives the same full evidence
    bundle through ``gatewatch evidence --prometheus-data``."""
    elsewhere = free_port()  # a Gateway address nobody answers on: watching it would never connect
    monkeypatch.setenv("GATEWATCH_GATEWAY", f"127.0.0.1:{elsewhere}")
    options = RehearsalOptions(duration=50.0, scenario=REPO_ROOT / "scenarios" / "calm.yaml", out_dir=tmp_path,
                               progress_every=10.0)
    with Rehearsal(options) as rehearsal:
        rehearsal.start()
        scraper = Scraper(rehearsal.metrics_url)
        scraper.start()
        rehearsal.play()
        result = rehearsal.finish()
        scrapes = scraper.stop()
        assert rehearsal.prometheus_url is not None
        alerts = alert_intervals(rehearsal.prometheus_url, rehearsal.window_start, rehearsal.window_end)

    assert not scrapes.failures
    assert result.failed_gates == [], f"calm session failed gates {result.failed_gates}; alerts: {sorted(alerts)}"
    assert result.passed is True
    # The whole machine's CPU and memory belong to the test machine, shared with the rest of the suite;
    # gatewatch's own processes are judged by MemoryHigh and MemoryGrowing, which stay in.
    own = {name: spans for name, spans in alerts.items() if name not in MACHINE_WIDE_ALERTS}
    assert own == {}, f"a calm session fired alerts (gatewatch's own load must cause none): {sorted(own)}"
    assert result.ledger.probe_orders > 0, "the scheduled order probes sent no order"
    assert result.ledger.problems == []
    assert (tmp_path / "evidence" / "verdict.json").is_file()
    assert (tmp_path / "rehearsal.json").is_file()
    assert rehearsal.config.gateway.port == rehearsal.ports.gateway != elsewhere
    assert "GATEWATCH_GATEWAY" not in rehearsal.env

    # evidence after the rehearsal, from its data folder alone (the stack is stopped by now), with
    # the command the rehearsal printed
    printed = next(line for line in capsys.readouterr().out.splitlines() if "--prometheus-data" in line)
    argv = shlex.split(printed.split(": ", 1)[1])
    assert argv[:2] == ["gatewatch", "evidence"]
    out = Path(argv[argv.index("--out") + 1])
    before = _listing(rehearsal.prometheus_data)
    done = subprocess.run([sys.executable, "-m", *argv], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("verdict.json", "report.html", "report.md", "MANIFEST.sha256"):
        assert (out / name).is_file(), name
    from_data = json.loads((out / "verdict.json").read_text())
    live = json.loads((tmp_path / "evidence" / "verdict.json").read_text())
    assert from_data["pass"] is True
    assert [g["id"] for g in from_data["gates"]] == [g["id"] for g in live["gates"]]
    assert from_data["failed_gates"] == live["failed_gates"] == []
    assert _listing(rehearsal.prometheus_data) == before, "the data folder given is only read"


def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}
