"""Every risk-limit gate has its alert, and the alert is critical exactly when the gate fails the session.

The switch (session.risk_limits_fail) reaches Prometheus as gatewatch_risk_limit_fails_session{limit}:
each alert is written twice, critical unless the switch is 0, warning only when it is 0. The
numbers are checked against the limits table in test_thresholds.py; the firing in
prometheus/tests/alerts_test.yml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gatewatch.config import RiskLimitsFailConfig
from gatewatch.evidence.gates import RISK_LIMITS, load_gates

ROOT = Path(__file__).resolve().parents[2]
ALERT_OF_GATE = {"position_limit": "PositionLimitExceeded", "day_trades_left": "DayTradesLow",
                 "risk_per_trade": "RiskPerTradeExceeded"}


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((ROOT / "prometheus" / "rules" / "alerts.yml").read_text(encoding="utf-8"))
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def test_the_switch_names_are_the_gates_risk_limits() -> None:
    assert tuple(RiskLimitsFailConfig.model_fields) == RISK_LIMITS
    assert sorted(g.risk_limit for g in load_gates() if g.risk_limit) == sorted(RISK_LIMITS)


def test_each_risk_gate_has_a_critical_and_a_reported_only_alert() -> None:
    gates = [g for g in load_gates() if g.risk_limit]
    assert {g.id for g in gates} == set(ALERT_OF_GATE)
    for gate in gates:
        rules = [r for r in _rules() if r["alert"] == ALERT_OF_GATE[gate.id]]
        switch = f'gatewatch_risk_limit_fails_session{{limit="{gate.risk_limit}"}} == 0'
        by_severity = {r["labels"]["severity"]: " ".join(r["expr"].split()) for r in rules}
        assert len(rules) == 2 and set(by_severity) == {"critical", "warning"}, gate.id
        assert f"unless on(instance, job) ({switch})" in by_severity["critical"], gate.id
        assert f"and on(instance, job) ({switch})" in by_severity["warning"], gate.id
        assert "for" not in rules[0] and "for" not in rules[1], f"{gate.id}: the gate fails on one sample"
