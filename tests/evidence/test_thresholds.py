"""Each limit written once: prometheus/thresholds.yml against every copy that cannot read it.

Gates, dashboards and the evidence report read the table; the Prometheus rules and the shipped
configuration carry the number themselves, so this test compares them with the table and fails
on the first copy that drifts. A last check scans the tree for stray copies of the memory limit.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gatewatch.config import ConfigError, GatewatchConfig, load_config
from gatewatch.evidence.gates import load_gates
from gatewatch.thresholds import THRESHOLDS, human, load_thresholds

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "prometheus" / "rules" / "alerts.yml"


def _alerts(name: str) -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    found = [r for g in doc["groups"] for r in g["rules"] if r.get("alert") == name]
    assert found, f"no alert {name}"
    return found


def _number_after(expr: str, left: str, op: str = ">") -> float:
    match = re.search(re.escape(left) + r"\s*" + re.escape(op) + r"\s*([0-9.eE+]+)", expr)
    assert match, f"no '{left} {op} N' in {expr!r}"
    return float(match.group(1))


# (alert, index among rules of that name, left-hand side, operator, threshold, text the annotations show)
RULE_COPIES = [
    ("QuoteStale", 0, "gatewatch_quote_age_seconds", ">", "quote_stale_after", "limit {text}"),
    ("QuoteStale", 0, "(gatewatch_gateway_linked_since_timestamp_seconds > 0)", ">", "quote_stale_after", ""),
    ("ClockSkewHigh", 0, "- gatewatch_clock_skew_uncertainty_seconds", ">", "max_clock_skew", "{text} limit"),
    ("MemoryHigh", 0, 'gatewatch_process_resident_memory_bytes{process!="gateway"}', ">", "memory_limit",
     "limit {text}"),
    ("MemoryHigh", 1, 'gatewatch_process_resident_memory_bytes{process="gateway"}', ">",
     "gateway_memory_limit", "limit {text}"),
    ("MemoryGrowing", 0, "deriv30m * 3600", ">", "memory_growth_limit", ""),
    ("FillLatencyHigh", 0, "gatewatch:order_fill_latency_seconds:p95_1h", ">", "fill_latency_p95_max",
     "{value:g} s expected"),
    ("NoProbeRun", 0, '(gatewatch_probe_last_run_timestamp_seconds{kind="active"})', ">", "no_probe_run_after",
     ""),
    ("DayTradesLow", 0, "gatewatch_account_day_trades_remaining", "<=", "min_day_trades_remaining", ""),
    ("DayTradesLow", 1, "gatewatch_account_day_trades_remaining", "<=", "min_day_trades_remaining", ""),
    ("PositionLimitExceeded", 0, "gatewatch_position_exposure_ratio", ">", "max_position_ratio",
     "limit of {text}"),
    ("PositionLimitExceeded", 1, "gatewatch_position_exposure_ratio", ">", "max_position_ratio",
     "limit of {text}"),
    ("RiskPerTradeExceeded", 0, "gatewatch_trade_risk_ratio", ">", "max_risk_per_trade_ratio",
     "limit of {text} per trade"),
    ("RiskPerTradeExceeded", 1, "gatewatch_trade_risk_ratio", ">", "max_risk_per_trade_ratio",
     "limit of {text} per trade"),
    ("HostCpuHigh", 0, "avg_over_time(gatewatch_host_cpu_usage_ratio[5m])", ">", "host_cpu_max_ratio",
     ""),
    ("HostMemoryHigh", 0, "gatewatch_host_memory_usage_ratio", ">", "host_memory_max_ratio", ""),
]


@pytest.mark.parametrize("alert, index, left, op, name, shown", RULE_COPIES, ids=lambda v: str(v))
def test_alert_rules_carry_the_tables_numbers(alert: str, index: int, left: str, op: str, name: str,
                                               shown: str) -> None:
    rule = _alerts(alert)[index]
    limit = THRESHOLDS[name]
    assert _number_after(rule["expr"], left, op) == pytest.approx(limit.value), (
        f"{alert}: expression differs from prometheus/thresholds.yml {name} = {limit.number}")
    if shown:
        text = shown.format(text=limit.text, value=limit.value)
        annotations = " ".join(" ".join(rule["annotations"].values()).split())
        assert text in annotations, f"{alert}: annotations do not say {text!r}"


GATE_COPIES = {
    "quotes_fresh": "quote_stale_after",
    "clock_in_sync": "max_clock_skew",
    "memory_bounded": "memory_limit",
    "data_coverage": "coverage_min_ratio",
}


@pytest.mark.parametrize("gate_id, name", sorted(GATE_COPIES.items()))
def test_gates_take_their_limits_from_the_table(gate_id: str, name: str) -> None:
    raw = {g["id"]: g for g in yaml.safe_load((ROOT / "prometheus" / "gates.yml").read_text())["gates"]}
    assert "${" + name + "}" in raw[gate_id]["pass_if"], f"{gate_id}: pass_if must name ${{{name}}}"
    gate = next(g for g in load_gates() if g.id == gate_id)
    assert gate.threshold == THRESHOLDS[name].value
    if THRESHOLDS[name].unit != "ratio":
        assert THRESHOLDS[name].text in gate.title


def test_a_changed_table_changes_the_gates(tmp_path: Path) -> None:
    """The gates really read the table: a different memory limit gives a different gate."""
    table = yaml.safe_load((ROOT / "prometheus" / "thresholds.yml").read_text())
    table["thresholds"]["memory_limit"]["value"] = 256 * 1024 * 1024
    path = tmp_path / "thresholds.yml"
    path.write_text(yaml.safe_dump(table))
    from gatewatch.evidence.gates import parse_gate

    raw = next(g for g in yaml.safe_load((ROOT / "prometheus" / "gates.yml").read_text())["gates"]
               if g["id"] == "memory_bounded")
    gate = parse_gate(raw, 0, "gates.yml", load_thresholds(path))
    assert gate.threshold == 268435456
    assert gate.title.endswith("256 MiB")


def test_unknown_reference_names_the_gate_and_the_name(tmp_path: Path) -> None:
    path = tmp_path / "gates.yml"
    path.write_text('gates:\n  - {id: g, title: t, expr: up, pass_if: "<= ${no_such_limit}"}\n')
    with pytest.raises(ConfigError, match=r"gates\[0\]\.pass_if: unknown threshold \$\{no_such_limit\}"):
        load_gates(path)


@pytest.mark.parametrize("entry, field", [
    ({"value": "5", "unit": "s", "meaning": "m"}, "value"),
    ({"value": float("nan"), "unit": "s", "meaning": "m"}, "value"),
    ({"value": 5, "unit": "minutes", "meaning": "m"}, "unit"),
    ({"value": 5, "unit": "s"}, "meaning"),
])
def test_bad_table_entry_names_the_field(tmp_path: Path, entry: dict[str, Any], field: str) -> None:
    path = tmp_path / "thresholds.yml"
    path.write_text(yaml.safe_dump({"thresholds": {"x": entry}}))
    with pytest.raises(ConfigError, match=rf"thresholds\.x\.{field}"):
        load_thresholds(path)


# config key (dotted) -> the threshold it repeats for a probe or preflight
CONFIG_COPIES = {
    "session.quote_stale_after": "quote_stale_after",
    "probes.quote_stale_after": "quote_stale_after",
    "preflight.max_clock_skew": "max_clock_skew",
    "probes.max_position_ratio": "max_position_ratio",
}


def _dotted(config: GatewatchConfig, key: str) -> float:
    value: Any = config
    for part in key.split("."):
        value = getattr(value, part)
    return float(value)


@pytest.mark.parametrize("key, name", sorted(CONFIG_COPIES.items()))
def test_config_defaults_and_shipped_config_equal_the_table(key: str, name: str) -> None:
    shipped = load_config(ROOT / "config" / "gatewatch.yaml", environ={})
    assert _dotted(shipped, key) == THRESHOLDS[name].value, f"config/gatewatch.yaml {key}"
    assert _dotted(GatewatchConfig(), key) == THRESHOLDS[name].value, f"default of {key}"


def test_dashboards_draw_the_tables_lines() -> None:
    model = json.loads((ROOT / "grafana" / "dashboards" / "session.json").read_text())
    steps = {float(s["value"]) for p in model["panels"]
             for s in p.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps", [])
             if s.get("value") is not None}
    for name in ("memory_limit", "max_clock_skew", "quote_stale_after"):
        assert THRESHOLDS[name].value in steps, f"no dashboard threshold line at {name}"


def test_evidence_charts_draw_the_tables_lines() -> None:
    from gatewatch.evidence.collect import chart_lines

    lines = chart_lines()
    assert lines["memory"] == [THRESHOLDS["memory_limit"].value]
    assert lines["quote_age"] == [THRESHOLDS["quote_stale_after"].value]
    assert sorted(lines["clock_skew"]) == [-THRESHOLDS["max_clock_skew"].value, THRESHOLDS["max_clock_skew"].value]


# Where the memory limit's number may be written: the table, the rules that cannot read it (checked
# above), the promtool tests that exercise them, and generated files.
MEMORY_COPIES_ALLOWED = {
    "prometheus/thresholds.yml",
    "prometheus/rules/alerts.yml",
    "prometheus/tests/alerts_test.yml",
    "grafana/dashboards/session.json",
}


def test_no_stray_copy_of_the_memory_limit() -> None:
    limit = THRESHOLDS["memory_limit"]
    patterns = re.compile(
        rf"\b{int(limit.value)}\b|500 \* 1024 \* 1024|\b500\s?MB\b|\b{re.escape(limit.text)}\b")
    offenders = []
    for folder in ("gatewatch", "exporter", "probes", "prometheus", "grafana", "proxy", "config", "bench"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in {".py", ".yml", ".yaml", ".json", ".md"} or not path.is_file():
                continue
            rel = path.relative_to(ROOT).as_posix()
            if rel in MEMORY_COPIES_ALLOWED:
                continue
            if patterns.search(path.read_text(encoding="utf-8", errors="replace")):
                offenders.append(rel)
    assert offenders == [], "write the memory limit as THRESHOLDS['memory_limit'] or ${memory_limit}"


def test_human_units() -> None:
    assert human(524288000, "bytes") == "500 MiB"
    assert human(1610612736, "bytes") == "1.5 GiB"
    assert human(0.2, "ratio") == "20%"
    assert human(0.03, "ratio") == "3%"
    assert human(0.5, "s") == "0.5 s"
