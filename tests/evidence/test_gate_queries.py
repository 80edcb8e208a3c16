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
from gatewatch.evidence.gates import Gate, counter_increments, judge, load_gates, overall_pass
from probes.active.runner import PROBES
from probes.active.schedule import CLEANUP_CLOSERS, initialise_series

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")

GATES = {g.id: g for g in load_gates()}
WINDOW_SECONDS = 3600
EVAL_TIME = "60m"
TARGET = 'job="gatewatch",instance="exporter:14002"'
INSTANCE = {"instance": "exporter:14002", "job": "gatewatch"}
RECORDING_RULES = Path(__file__).resolve().parents[2] / "prometheus" / "rules" / "recording.yml"
ALERT_RULES = RECORDING_RULES.with_name("alerts.yml")


def verdict_query(gate: Gate) -> str:
    """1 where the gate passes, 0 where it fails (one sample per series the gate returns)."""
    return f"({gate.expr_for(WINDOW_SECONDS)}) {gate.op} bool {gate.threshold:g}"


def promtool_case(
    tmp_path: Path, interval: str, series: list[dict[str, str]], checks: list[dict[str, Any]],
    rule_files: tuple[Path, ...] = (RECORDING_RULES,),
) -> subprocess.CompletedProcess[str]:
    test = {
        "rule_files": [str(path) for path in rule_files],
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


# ------------------------------------------------------------------------------ link to IB's servers

LOSSES = f"gatewatch_gateway_connectivity_losses_total{{{TARGET}}}"
LINK_LOST = f"gatewatch_gateway_connectivity_lost{{{TARGET}}}"


def expand(values: str, step: float) -> list[tuple[float, float]]:
    """promtool's ``vXn`` notation (v repeated n+1 times) as (time, value) points from 0."""
    flat: list[float] = []
    for item in values.split():
        value, _, times = item.partition("x")
        flat += [float(value)] * (int(times) + 1 if times else 1)
    return [(i * step, v) for i, v in enumerate(flat)]


@pytest.mark.parametrize(
    ("case", "losses", "lost", "count"),
    [
        ("calm: linked throughout", "0x360", "0x360", 0),
        # a 3 s 1100 between two scrapes: the gauge never reads 1, the counter keeps the loss
        ("one 3 s loss between scrapes", "0x180 1x179", "0x360", 1),
        ("one 8 s loss seen by one scrape", "0x180 1x179", "0x180 1 0x178", 1),
        ("a loss, then the exporter restarted (counter reset)", "0x100 1x79 0x179", "0x360", 1),
    ],
)
def test_ib_link_held_fails_on_any_loss_however_short(tmp_path: Path, case: str, losses: str, lost: str,
                                                     count: int) -> None:
    """A loss shorter than ConnectivityLost's 10 s fires no alert (no_critical_alerts passes) yet
    fails ib_link_held, in Grafana's query and in the evidence's exact count."""
    gate = GATES["ib_link_held"]
    series = [up_series("1x360"), {"series": LOSSES, "values": losses}, {"series": LINK_LOST, "values": lost}]
    checks = [gate_says(gate, [({}, int(count == 0))]), gate_says(GATES["no_critical_alerts"], [({}, 1)])]
    result = promtool_case(tmp_path, "10s", series, checks, rule_files=(RECORDING_RULES, ALERT_RULES))
    assert result.returncode == 0, f"{case}:\n{result.stdout}{result.stderr}"
    exact = counter_increments(expand(losses, 10.0), start=0.0, grace=10.0)
    assert exact == count, case
    judged = judge(gate, WINDOW_SECONDS, [({}, exact)])
    assert judged.critical and (judged.status == "pass") == (count == 0) and overall_pass([judged]) == (count == 0)


# ------------------------------------------------------------------------------ market-open time

def market_open_series(values: str) -> dict[str, str]:
    return {"series": f'gatewatch_market_open{{{TARGET},exchange="NYSE"}}', "values": values}


@pytest.mark.parametrize(
    ("case", "market_open", "verdict"),
    [
        ("market open the whole window", "1x360", 1),
        ("the window's second half is after the close", "1x180 0x180", 0),
        ("market closed throughout", "0x360", 0),
    ],
)
def test_market_open_time_covered(tmp_path: Path, case: str, market_open: str, verdict: int) -> None:
    """50 of the 60 minutes must be market-open time with a successful scrape."""
    gate = {g.id: g for g in load_gates(overrides={"required_duration": 3000})}["market_open_covered"]
    result = promtool_case(tmp_path, "10s", [up_series("1x360"), market_open_series(market_open)],
                           [gate_says(gate, [({}, verdict)])])
    assert result.returncode == 0, f"{case}:\n{result.stdout}{result.stderr}"


def test_window_half_outside_market_hours_fails_naming_the_gate(tmp_path: Path) -> None:
    gates = {g.id: g for g in load_gates(overrides={"required_duration": 3000})}
    gate = gates["market_open_covered"]
    check = {"expr": f"round({gate.expr_for(WINDOW_SECONDS)}, 60)", "eval_time": EVAL_TIME,
             "exp_samples": [{"labels": "{}", "value": 1800}]}
    result = promtool_case(tmp_path, "10s", [up_series("1x360"), market_open_series("1x180 0x180")], [check])
    assert result.returncode == 0, result.stdout + result.stderr
    judged = judge(gate, WINDOW_SECONDS, [({}, 1800.0)])
    assert judged.status == "fail" and judged.critical
    assert not overall_pass([judged])
    assert "value = 30m (needs >= 50m)" in judged.reason and "market-open time" in judged.reason


def test_quotes_missing_for_half_the_market_open_time_is_measured(tmp_path: Path) -> None:
    """The coverage query: quotes for 15 of the 30 market-open minutes read as 0.5."""
    gate = GATES["quotes_fresh"]
    quotes = {"series": f'gatewatch_quote_age_seconds{{{TARGET},symbol="SPY"}}', "values": "_x180 1x90 stale"}
    check = {"expr": f"round({gate.coverage_expr(WINDOW_SECONDS)}, 0.05)", "eval_time": EVAL_TIME,
             "exp_samples": [{"labels": "{}", "value": 0.5}]}
    result = promtool_case(tmp_path, "10s", [up_series("1x360"), market_open_series("0x180 1x180"), quotes],
                           [check])
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------------ clock interval

@pytest.mark.parametrize(
    ("case", "skew", "uncertainty", "verdict"),
    [
        ("estimate 0.8 s off, but the interval reaches 0.3 s", "0.8x60", "0.5x60", 1),
        ("the whole interval 0.8-1.0 s off", "-0.9x60", "0.1x60", 0),
        ("in sync", "0.1x60", "0.5x60", 1),
    ],
)
def test_clock_gate_judges_the_whole_interval(tmp_path: Path, case: str, skew: str, uncertainty: str,
                                              verdict: int) -> None:
    series = [{"series": f"gatewatch_clock_skew_seconds{{{TARGET}}}", "values": skew},
              {"series": f"gatewatch_clock_skew_uncertainty_seconds{{{TARGET}}}", "values": uncertainty}]
    result = promtool_case(tmp_path, "1m", series, [gate_says(GATES["clock_in_sync"], [(INSTANCE, verdict)])])
    assert result.returncode == 0, f"{case}:\n{result.stdout}{result.stderr}"


def test_clock_gate_reports_the_interval(tmp_path: Path) -> None:
    low, high = GATES["clock_in_sync"].show
    series = [{"series": f"gatewatch_clock_skew_seconds{{{TARGET}}}", "values": "-0.9x60"},
              {"series": f"gatewatch_clock_skew_uncertainty_seconds{{{TARGET}}}", "values": "0.1x60"}]
    checks = [{"expr": f"round({shown.expr.replace('$__range', '3600s')}, 0.01)", "eval_time": EVAL_TIME,
               "exp_samples": [{"labels": "{}", "value": value}]} for shown, value in ((low, -1.0), (high, -0.8))]
    result = promtool_case(tmp_path, "1m", series, checks)
    assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------------------ risk limits

RISK_BREACHES = [
    ("position_limit", f'gatewatch_position_exposure_ratio{{{TARGET},symbol="SPY"}}', "0.1x30 0.25x30",
     {"symbol": "SPY"}),
    ("day_trades_left", f"gatewatch_account_day_trades_remaining{{{TARGET}}}", "3x20 2x20 1x20", INSTANCE),
    ("risk_per_trade", f'gatewatch_trade_risk_ratio{{{TARGET},symbol="SPY"}}', "0.01x30 0.05x30",
     {"symbol": "SPY"}),
]


@pytest.mark.parametrize(("gate_id", "series", "values", "labels"), RISK_BREACHES)
def test_a_session_breaking_a_risk_limit_fails(tmp_path: Path, gate_id: str, series: str, values: str,
                                               labels: dict[str, str]) -> None:
    from gatewatch.config import GatewatchConfig
    from gatewatch.evidence.collect import apply_risk_switch

    gate = GATES[gate_id]
    result = promtool_case(tmp_path, "1m", [{"series": series, "values": values}],
                           [gate_says(gate, [(labels, 0)])])
    assert result.returncode == 0, result.stdout + result.stderr
    breach = {"position_limit": 0.25, "day_trades_left": 1.0, "risk_per_trade": 0.05}[gate_id]
    judged = judge(gate, WINDOW_SECONDS, [(labels, breach)])
    apply_risk_switch(judged, gate, GatewatchConfig())
    assert judged.status == "fail" and judged.critical and not overall_pass([judged]), "default: fails"
    relaxed = GatewatchConfig.model_validate({"session": {"risk_limits_fail": {gate.risk_limit: False}}})
    judged = judge(gate, WINDOW_SECONDS, [(labels, breach)])
    apply_risk_switch(judged, gate, relaxed)
    assert judged.status == "fail" and overall_pass([judged]) and "reported only" in judged.note


@pytest.mark.parametrize("fails_session", [1, 0], ids=["fails", "reported-only"])
@pytest.mark.parametrize(("gate_id", "series", "values", "labels"), RISK_BREACHES)
def test_a_risk_alert_fails_no_critical_alerts_only_when_its_limit_fails_the_session(
        tmp_path: Path, gate_id: str, series: str, values: str, labels: dict[str, str], fails_session: int) -> None:
    """The alert rules with the exporter's switch: a reported-only breach is a warning, not a critical row."""
    gate = GATES[gate_id]
    switch = f'gatewatch_risk_limit_fails_session{{{TARGET},limit="{gate.risk_limit}"}}'
    result = promtool_case(tmp_path, "1m", [{"series": series, "values": values},
                                            {"series": switch, "values": f"{fails_session}x60"},
                                            {"series": f"up{{{TARGET}}}", "values": "1x60"}],  # no ExporterDown
                           [gate_says(GATES["no_critical_alerts"], [({}, 1 - fails_session)])],
                           rule_files=(RECORDING_RULES, ALERT_RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_unrestricted_account_has_no_day_trade_series(tmp_path: Path) -> None:
    """-1 (no pattern-day-trader restriction) is dropped: no series, and no_data passes."""
    check = {"expr": GATES["day_trades_left"].expr_for(WINDOW_SECONDS), "eval_time": EVAL_TIME, "exp_samples": []}
    result = promtool_case(tmp_path, "1m",
                           [{"series": f"gatewatch_account_day_trades_remaining{{{TARGET}}}", "values": "-1x60"}],
                           [check])
    assert result.returncode == 0, result.stdout + result.stderr
    assert GATES["day_trades_left"].no_data == "pass"
