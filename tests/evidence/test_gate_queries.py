"""The gates' PromQL on hand-made series, evaluated by the real promtool.

Why promtool and not a recorded session: the cases that matter are the awkward ones (a counter
series that first appears at 1, a recording that starts late or has a hole) and they are cheap to
write down as series here, while a live recording would take minutes per case. Each case states
what the gate must say (pass 1 / fail 0), via the same ``(expr) op bool threshold`` form the Grafana
session dashboard uses.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.metrics import Metrics
from gatewatch.evidence.gates import Gate, load_gates
from probes.active.runner import PROBES
from probes.active.schedule import CLEANUP_CLOSERS, initialise_series

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")

GATES = {g.id: g for g in load_gates()}
WINDOW_SECONDS = 3600
EVAL_TIME = "60m"
TARGET = 'job="gatewatch",instance="exporter:14002"'


def verdict_query(gate: Gate) -> str:
    """1 where the gate passes, 0 where it fails (one sample per series the gate returns)."""
    return f"({gate.expr_for(WINDOW_SECONDS)}) {gate.op} bool {gate.threshold:g}"


def promtool_case(
    tmp_path: Path, interval: str, series: list[dict[str, str]], checks: list[dict[str, Any]]
) -> subprocess.CompletedProcess[str]:
    test = {
        "evaluation_interval": interval,
        "tests": [{"interval": interval, "input_series": series, "promql_expr_test": checks}],
    }
    path = tmp_path / "gate_test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    return subprocess.run(
        ["promtool", "test", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
    )


def gate_says(gate: Gate, verdicts: list[tuple[dict[str, str], int]]) -> dict[str, Any]:
    return {
        "expr": verdict_query(gate),
        "eval_time": EVAL_TIME,
        "exp_samples": [{"labels": "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}",
                         "value": value} for labels, value in verdicts],
    }


# ------------------------------------------------------------------------------ data coverage

def up_series(values: str) -> dict[str, str]:
    return {"series": f"up{{{TARGET}}}", "values": values}


@pytest.mark.parametrize(
    ("case", "values", "verdict"),
    [
        ("scraped throughout", "1x360", 1),
        ("the exporter down but still scraped (judged by exporter_scraped)", "1x100 0x60 1x200", 1),
        ("recording starts in the last 6 minutes", "_x324 1x36", 0),
        ("Prometheus down for 10 minutes mid-window", "1x150 _x60 1x150", 0),
        ("recording ends 5 minutes early", "1x330 _x30", 0),
    ],
)
def test_data_coverage(tmp_path: Path, case: str, values: str, verdict: int) -> None:
    result = promtool_case(
        tmp_path, "10s", [up_series(values)], [gate_says(GATES["data_coverage"], [({}, verdict)])]
    )
    assert result.returncode == 0, f"{case}:\n{result.stdout}{result.stderr}"


def test_data_coverage_value_is_the_covered_share(tmp_path: Path) -> None:
    """Six of sixty minutes recorded reads as 0.1, the number the evidence report shows."""
    gate = GATES["data_coverage"]
    check = {"expr": f"round({gate.expr_for(WINDOW_SECONDS)}, 0.01)", "eval_time": EVAL_TIME,
             "exp_samples": [{"labels": "{}", "value": 0.1}]}
    result = promtool_case(tmp_path, "10s", [up_series("_x324 1x36")], [check])
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------------ order probes

def probe_series(probe: str, failures: str, success: str) -> list[dict[str, str]]:
    runs = f'gatewatch_probe_runs_total{{{TARGET},probe="{probe}",kind="active",result="failure"}}'
    gauge = f'gatewatch_probe_success{{{TARGET},probe="{probe}",kind="active"}}'
    return [{"series": runs, "values": failures}, {"series": gauge, "values": success}]


@pytest.mark.parametrize(
    ("case", "failures", "success", "verdict"),
    [
        ("every run passed", "0x60", "_x5 1x55", 1),
        ("one failure, counter created at 0", "0x29 1x31", "_x5 1x23 0x10 1x21", 0),
        # The first-sample problem: the failure series first appears at 1. increase() sees no rise;
        # the last-result gauge still holds the failure for the ten minutes until the next run.
        ("first run failed before any scrape", "_x5 1x55", "_x5 0x10 1x45", 0),
        ("failed in the window's last minute", "0x59 1", "_x5 1x54 0", 0),
    ],
)
def test_order_probes_passed(tmp_path: Path, case: str, failures: str, success: str, verdict: int) -> None:
    series = probe_series("fill", failures, success) + probe_series("cancel", "0x60", "_x5 1x55")
    check = gate_says(GATES["order_probes_passed"], [({"probe": "fill"}, verdict), ({"probe": "cancel"}, 1)])
    result = promtool_case(tmp_path, "1m", series, [check])
    assert result.returncode == 0, f"{case}:\n{result.stdout}{result.stderr}"


def test_increase_alone_misses_a_series_that_first_appears_at_1(tmp_path: Path) -> None:
    """Why the gate does not rest on increase() only (and why the exporter creates series at 0)."""
    check = {"expr": 'sum(increase(gatewatch_probe_runs_total{result="failure"}[3600s]))',
             "eval_time": EVAL_TIME, "exp_samples": [{"labels": "{}", "value": 0}]}
    result = promtool_case(tmp_path, "1m", probe_series("fill", "_x5 1x55", "_x5 0x10 1x45"), [check])
    assert result.returncode == 0, result.stdout + result.stderr


def test_schedule_creates_every_active_series_at_zero_before_the_first_run() -> None:
    metrics = Metrics()
    initialise_series(metrics)
    sample = metrics.registry.get_sample_value
    for probe in PROBES:
        for result in ("success", "failure"):
            labels = {"probe": probe, "kind": "active", "result": result}
            assert sample("gatewatch_probe_runs_total", labels) == 0, labels
        assert sample("gatewatch_probe_success", {"probe": probe, "kind": "active"}) is None, (
            "a last-result gauge created at 0 would read as a failed run")
    for closer in (*PROBES, *CLEANUP_CLOSERS):
        assert sample("gatewatch_order_close_escalations_total", {"probe": closer}) == 0, closer


def test_exporter_creates_every_scheduled_passive_series_at_zero() -> None:
    from exporter.app import ExporterApp
    from gatewatch.config import GatewatchConfig

    app = ExporterApp(GatewatchConfig())  # builds the probes; connects to nothing until run()
    sample = app.metrics.registry.get_sample_value
    scheduled = [recorder.probe for recorder, *_ in app.schedule()]
    assert {"connection", "quotes", "clock", "reconciliation"} <= set(scheduled)
    for probe in scheduled:
        for result in ("success", "failure"):
            labels = {"probe": probe, "kind": "passive", "result": result}
            assert sample("gatewatch_probe_runs_total", labels) == 0, labels
        assert sample("gatewatch_probe_success", {"probe": probe, "kind": "passive"}) is None
