"""Prometheus configuration and rules, checked with the real promtool.

promtool's own unit tests (prometheus/tests/*.yml) give every alert a firing and a silent case; the
tests here run them, prove they would catch a changed threshold, and pin the rules to the metric
contract (exporter/metrics.py), the session gates and the runbook anchors.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import promstack

from exporter.metrics import Metrics
from gatewatch.config import GatewatchConfig, load_config
from gatewatch.evidence.gates import load_gates
from proxy.app import ProxyApp

ROOT = promstack.ROOT
RULES = promstack.RULES_DIR
UNIT_TESTS = sorted((ROOT / "prometheus" / "tests").glob("*.yml"))

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((RULES / "alerts.yml").read_text())
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def test_prometheus_config_is_valid() -> None:
    result = promtool("check", "config", "prometheus/prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_files_are_valid() -> None:
    result = promtool("check", "rules", *(str(p) for p in sorted(RULES.glob("*.yml"))))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    result = promtool("test", "rules", *(str(p) for p in UNIT_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_unit_tests_catch_a_loosened_threshold(tmp_path: Path) -> None:
    """If someone raised QuoteStale's 5 s limit, the promtool tests must fail."""
    shutil.copytree(ROOT / "prometheus", tmp_path / "prometheus")
    alerts = tmp_path / "prometheus" / "rules" / "alerts.yml"
    text = alerts.read_text()
    assert "gatewatch_quote_age_seconds > 5 " in text
    alerts.write_text(text.replace("gatewatch_quote_age_seconds > 5 ", "gatewatch_quote_age_seconds > 10 "))
    result = promtool("test", "rules", "prometheus/tests/alerts_test.yml", cwd=tmp_path)
    assert result.returncode != 0
    assert "QuoteStale" in result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    fires: set[str] = set()
    silent: set[str] = set()
    for path in UNIT_TESTS:
        for case in yaml.safe_load(path.read_text()).get("tests", []):
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {r["alert"] for r in alert_rules()}
    assert names - fires == set(), "alerts without a firing unit test"
    assert names - silent == set(), "alerts without a must-not-fire unit test"


def test_every_alert_has_severity_value_and_runbook_anchor() -> None:
    for rule in alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        ann = rule["annotations"]
        assert ann["summary"].strip(), name
        if not rule["expr"].startswith("absent("):  # nothing to show when the series does not exist
            assert "$value" in ann["description"], f"{name}: description must show the current value"
        assert ann["runbook_url"] == f"docs/runbook.md#{name.lower()}", name


def test_rules_use_only_metrics_from_the_contract() -> None:
    """A renamed metric in exporter/metrics.py must not leave an alert silently watching nothing."""
    exported = {"gatewatch_quote_age_seconds"}  # produced at scrape time by the quotes probe
    families = [*Metrics().registry.collect(), *ProxyApp(GatewatchConfig()).registry.collect()]  # + the proxy's
    for family in families:
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}.get(family.type, [""])
        exported.update(family.name + s for s in suffixes)
    used = set()
    for path in RULES.glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                used.update(re.findall(r"\b(gatewatch_[a-z0-9_]+)", rule["expr"]))
    assert used - exported == set()


def test_gates_use_only_defined_recording_rules() -> None:
    recorded = {r.get("record") for p in RULES.glob("*.yml") for g in yaml.safe_load(p.read_text())["groups"]
                for r in g["rules"]}
    gates = (ROOT / "prometheus" / "gates.yml").read_text()
    assert set(re.findall(r"\b(gatewatch:[a-z0-9_:]+)", gates)) <= recorded


def test_no_probe_run_threshold_is_twice_the_configured_schedule() -> None:
    rule = next(r for r in alert_rules() if r["alert"] == "NoProbeRun")
    threshold = float(re.search(r"\) > (\d+)", rule["expr"]).group(1))  # type: ignore[union-attr]
    window = re.search(r"\[(\d+)m\]", rule["expr"]).group(1)  # type: ignore[union-attr]
    interval = load_config(ROOT / "config" / "gatewatch.yaml").active.interval
    assert threshold == 2 * interval
    assert float(window) * 60 == 2 * interval


def test_overlay_keeps_expressions_and_shortens_timing(tmp_path: Path) -> None:
    config = promstack.overlay_prometheus_config(
        tmp_path / "prom", exporter_target="127.0.0.1:1", alertmanager_target="127.0.0.1:2",
        prometheus_target="127.0.0.1:3")
    written = sorted((tmp_path / "prom" / "rules").glob("*.yml"))
    assert {p.name for p in written} == {p.name for p in RULES.glob("*.yml")}
    for path in written:
        overlay = yaml.safe_load(path.read_text())
        production = yaml.safe_load((RULES / path.name).read_text())
        for o_group, p_group in zip(overlay["groups"], production["groups"], strict=True):
            assert o_group["interval"] == "1s"
            for o_rule, p_rule in zip(o_group["rules"], p_group["rules"], strict=True):
                assert o_rule["expr"] == p_rule["expr"]
                assert o_rule.get("for", "0s") == "0s"
    result = promtool("check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    doc = yaml.safe_load(config.read_text())
    assert doc["global"]["scrape_interval"] == "1s"
    assert doc["scrape_configs"][0]["static_configs"] == [{"targets": ["127.0.0.1:1"]}]


def _alert(name: str) -> dict[str, Any]:
    return next(r for r in alert_rules() if r["alert"] == name)


def _threshold_after(expr: str, left: str) -> float:
    """The number in ``<left> > N`` of an alert expression."""
    match = re.search(re.escape(left) + r"\s*>\s*([0-9.]+)", expr)
    assert match, f"no '{left} > N' in {expr!r}"
    return float(match.group(1))


def test_quote_staleness_thresholds_follow_the_config() -> None:
    """The 5 s in the gate, the alert and their texts is session/probes.quote_stale_after: change both or neither."""
    config = load_config(ROOT / "config" / "gatewatch.yaml")
    limit = config.session.quote_stale_after
    assert config.probes.quote_stale_after == limit, "the passive probe and the session judge staleness alike"
    gate = next(g for g in load_gates() if g.id == "quotes_fresh")
    assert (gate.op, gate.threshold) == ("<=", limit)
    assert f"{limit:g} s" in gate.title
    alert = _alert("QuoteStale")
    assert _threshold_after(alert["expr"], "gatewatch_quote_age_seconds") == limit
    assert f"limit {limit:g} s" in alert["annotations"]["description"]


def test_clock_skew_thresholds_follow_the_config() -> None:
    """The 0.5 s in the gate and the alert is preflight.max_clock_skew: change both or neither."""
    limit = load_config(ROOT / "config" / "gatewatch.yaml").preflight.max_clock_skew
    gate = next(g for g in load_gates() if g.id == "clock_in_sync")
    assert (gate.op, gate.threshold) == ("<=", limit)
    assert f"{limit:g} s" in gate.title
    alert = _alert("ClockSkewHigh")
    assert _threshold_after(alert["expr"], "- gatewatch_clock_skew_uncertainty_seconds") == limit
    assert f"{limit:g} s" in alert["annotations"]["summary"]
    assert f"{limit:g} s limit" in alert["annotations"]["description"]


def test_data_coverage_tolerates_a_few_missed_scrapes_only() -> None:
    """The coverage gate's freshness limit against the production scrape interval."""
    scrape = promstack.seconds(yaml.safe_load(promstack.PROMETHEUS_CONFIG.read_text())["global"]["scrape_interval"])
    gate = next(g for g in load_gates() if g.id == "data_coverage")
    fresh = float(re.search(r"<= bool ([0-9.]+)", gate.expr).group(1))  # type: ignore[union-attr]
    assert 3 * scrape <= fresh <= 10 * scrape
