"""Grafana dashboards: generated from the gates, structurally sound, and every query works.

No Grafana server can run here, so the dashboards are validated the way Grafana would use them:
the JSON model is checked for what Grafana needs, and every panel's PromQL (with Grafana's
variables substituted) runs against a real Prometheus scraping a real exporter that is connected
to the simulator. A misspelt metric or label fails the test as "no data", not silently on the Pi.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import dashgen  # grafana/ is on pytest's pythonpath
import pytest
import yaml
from dashgen.queries import gate_query
from support.stack import (
    ROOT,
    StackRun,
    http_get,
    require_prometheus,
    start_stack,
)

from gatewatch.config import GatewatchConfig
from proxy.app import ProxyApp

DASHBOARD_DIR = ROOT / "grafana" / "dashboards"
GRAFANA_VARIABLES = {
    # What Grafana substitutes, for a range comfortably covered by the test's data.
    "$__rate_interval": "8s",
    "$__interval": "2s",
    "$__range_s": "60",  # before $__range, which it starts with
    "$__range": "60s",
    "$probe": ".*",
    "$kind": ".*",
}


DASHBOARDS: dict[str, dict[str, Any]] = dashgen.build()


def substitute(expr: str) -> str:
    for name in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, GRAFANA_VARIABLES[name])
    assert "$" not in expr, f"unsubstituted variable in {expr!r}"
    return expr


def all_targets() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for name, model in DASHBOARDS.items():
        for panel, target in dashgen.iter_targets(model):
            yield name, panel, target


def test_committed_json_is_what_the_generator_produces() -> None:
    committed = sorted(p.name for p in DASHBOARD_DIR.glob("*.json"))
    assert committed == sorted(DASHBOARDS), "run python grafana/build_dashboards.py and commit its output"
    for name, model in DASHBOARDS.items():
        text = (DASHBOARD_DIR / name).read_text(encoding="utf-8")
        assert text == dashgen.render_json(model), f"{name} is stale: run python grafana/build_dashboards.py"


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_structure(name: str) -> None:
    model = DASHBOARDS[name]
    for key in ("uid", "title", "schemaVersion", "panels", "templating", "time", "annotations"):
        assert key in model, f"{name}: missing {key}"
    assert re.fullmatch(r"[a-z0-9-]{1,40}", model["uid"]), "stable, URL-safe uid"
    assert 36 <= model["schemaVersion"] <= 41
    ids = [p["id"] for p in model["panels"]]
    assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
    occupied: set[tuple[int, int]] = set()
    for panel in model["panels"]:
        pos = panel["gridPos"]
        assert all(isinstance(pos[k], int) for k in ("x", "y", "w", "h")), panel["title"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24 and pos["h"] > 0, panel["title"]
        cells = {(pos["x"] + dx, pos["y"] + dy) for dx in range(pos["w"]) for dy in range(pos["h"])}
        assert not cells & occupied, f"{name}: panel {panel['title']!r} overlaps another"
        occupied |= cells
        if panel["type"] == "row":
            continue
        assert panel["title"] and panel["targets"], f"{name}: panel {panel['id']} without title/targets"
        assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), f"{panel['title']}: duplicate refId"
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] == "prometheus", panel["title"]
    defined = {v["name"] for v in model["templating"]["list"]}
    for variable in model["templating"]["list"]:
        assert variable["type"] in {"query", "custom", "interval", "datasource", "constant"}
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == "prometheus"
    used = {m for _, panel, t in all_targets() if panel in model["panels"]
            for m in re.findall(r"\$(\w+)", t["expr"]) if not m.startswith("__")}
    assert used <= defined, f"{name}: undefined variables {used - defined}"


def test_no_datasource_is_referenced_by_name() -> None:
    for name in DASHBOARDS:
        text = (DASHBOARD_DIR / name).read_text(encoding="utf-8")
        assert '"datasource": "' not in text, f"{name}: datasource given by name, use the uid"


def test_every_gate_has_a_pass_fail_panel_built_from_gates_yml() -> None:
    gates = dashgen.load_gates()  # limits from prometheus/thresholds.yml filled in
    panels = {p["title"]: p for p in DASHBOARDS["session.json"]["panels"]}
    for gate in gates:
        panel = panels.get(gate["title"])
        assert panel is not None, f"gate {gate['id']} has no panel"
        expr = panel["targets"][0]["expr"]
        assert gate["expr"].strip() in expr and "bool" in expr
        texts = {opt["text"] for m in panel["fieldConfig"]["defaults"]["mappings"] for opt in m["options"].values()}
        assert texts == {"PASS", "FAIL"}
        assert panel["fieldConfig"]["defaults"]["noValue"].startswith(gate["no_data"].upper())


def test_allow_empty_list_names_real_panels_only() -> None:
    titles = {panel["title"] for _, panel, _ in all_targets()}
    assert set(dashgen.ALLOW_EMPTY) <= titles, "stale entries in ALLOW_EMPTY"
    assert len(dashgen.ALLOW_EMPTY) <= 8, "keep the allow-empty list short"


def test_gate_query_rejects_an_unparseable_criterion() -> None:
    with pytest.raises(ValueError, match="pass_if"):
        gate_query("up", "about 5")


# --------------------------------------------------------------------------------------------
# every query against a real Prometheus scraping a real exporter connected to the simulator


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackRun]:
    require_prometheus()
    run = start_stack(tmp_path_factory.mktemp("dashboards"), "--duration", "300")
    try:
        yield run
    finally:
        run.stop()


def _has_data(result: dict[str, Any]) -> bool:
    return bool(result.get("data", {}).get("result"))


def _run(stack: StackRun, target: dict[str, Any]) -> dict[str, Any]:
    expr = substitute(target["expr"])
    return stack.query(expr) if target["instant"] else stack.query_range(expr, 30)


METRIC_NAME = re.compile(r"\b(gatewatch[_:][A-Za-z0-9_:]*)")
HISTOGRAM_SERIES = re.compile(r"_(bucket|sum|count)$")
PROXY_METRICS = {f.name + ("_total" if f.type == "counter" else "")
                 for f in ProxyApp(GatewatchConfig()).registry.collect()}
"""What `gatewatch proxy` exports (the bot panels and gates read it; the test stack runs no proxy)."""


def _metric_known(stack: StackRun, name: str, recorded: set[str]) -> bool:
    """Exported by the exporter (its metadata, even with no sample yet), by the proxy, or recorded by a rule."""
    if ":" in name:
        return name in recorded
    if name in PROXY_METRICS or HISTOGRAM_SERIES.sub("", name) in PROXY_METRICS:
        return True
    for candidate in (name, HISTOGRAM_SERIES.sub("", name)):
        url = (f"http://{stack.prometheus}/api/v1/targets/metadata?"
               + urllib.parse.urlencode({"metric": candidate, "match_target": '{job="gatewatch"}'}))
        if json.loads(http_get(url)[1]).get("data"):
            return True
    return False


@pytest.mark.e2e
def test_every_panel_query_runs_and_returns_data(stack: StackRun) -> None:
    gate_titles = {g["title"] for g in dashgen.load_gates()}
    queries = [(name, panel["title"], target) for name, panel, target in all_targets()]
    expected = [(n, t, tgt) for n, t, tgt in queries if t not in dashgen.ALLOW_EMPTY and t not in gate_titles]

    def missing() -> list[str]:
        return [f"{name} / {title} [{target['refId']}]: {substitute(target['expr'])}"
                for name, title, target in expected if not _has_data(_run(stack, target))]

    # Probes start at once, but rate windows and some probes need a few rounds before data shows.
    deadline = time.monotonic() + 60
    still_missing = missing()
    while still_missing and time.monotonic() < deadline:
        time.sleep(2)
        still_missing = missing()

    errors = []
    for name, title, target in queries:
        result = _run(stack, target)
        if result.get("status") != "success":
            errors.append(f"{name} / {title}: {result.get('errorType')}: {result.get('error')}")
    assert not errors, "queries Prometheus rejected:\n" + "\n".join(errors)
    assert not still_missing, "panels without data (fix the query, or justify it in ALLOW_EMPTY):\n" + "\n".join(
        still_missing)

    rules = json.loads(http_get(f"http://{stack.prometheus}/api/v1/rules?type=record")[1])
    recorded = {r["name"] for g in rules["data"]["groups"] for r in g["rules"]}
    names = {m for _, _, target in queries for m in METRIC_NAME.findall(target["expr"])}
    unknown = sorted(n for n in names if not _metric_known(stack, n, recorded))
    assert not unknown, f"panels name metrics nobody exports or records: {unknown}"


@pytest.mark.e2e
def test_gate_panels_judge_a_healthy_simulated_session(stack: StackRun) -> None:
    """Against a healthy simulator the gates that can be judged already show PASS.

    order_probes_ran needs scheduled order probes, which this stack does not run, so its panel
    must show FAIL: a gate panel that could never fail would prove nothing.
    """
    panels = {p["title"]: p for p in DASHBOARDS["session.json"]["panels"] if p["type"] == "stat"}
    gates = dashgen.load_gates()
    healthy = ("exporter_scraped", "gateway_connected", "no_disconnects", "ib_link_held", "clock_in_sync",
               "memory_bounded", "positions_reconciled", "no_critical_alerts")

    def judged() -> tuple[dict[str, str], list[str]]:
        """Each gate's verdict now, and the healthy gates that no data would fail (not judged yet)."""
        verdicts: dict[str, str] = {}
        waiting: list[str] = []
        for gate in gates:
            result = stack.query(substitute(panels[gate["title"]]["targets"][0]["expr"]))
            assert result["status"] == "success", result
            values = {s["value"][1] for s in result["data"]["result"]}
            assert values <= {"0", "1"}, f"{gate['id']}: a pass/fail panel must give 0 or 1, got {values}"
            verdicts[gate["id"]] = (gate["no_data"] if not values else "pass" if values == {"1"} else "fail")
            if not values and gate["id"] in healthy and gate["no_data"] == "fail":
                waiting.append(gate["id"])
        return verdicts, waiting

    # The stack has just started when this test runs first: a gate is judged once its series exist
    # (the first scrapes, two samples for increase(), a clock measurement), not before.
    deadline = time.monotonic() + 60
    verdicts, waiting = judged()
    while waiting and time.monotonic() < deadline:
        time.sleep(1)
        verdicts, waiting = judged()
    for gate_id in healthy:
        assert verdicts[gate_id] == "pass", f"{gate_id}: {verdicts}"
    assert verdicts["order_probes_ran"] == "fail", verdicts


def test_generator_sdk_is_the_release_for_composes_grafana() -> None:
    """The SDK's builders are typed against one Grafana version's schema: the one compose runs."""
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    sdk = re.search(r'"grafana-foundation-sdk==\d+!(\d+)\.(\d+)\.\d+"', pyproject)
    assert sdk, "grafana-foundation-sdk must be pinned exactly"
    image = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))["services"]["grafana"]["image"]
    grafana = re.fullmatch(r"grafana/grafana:(\d+)\.(\d+)\.\d+", image)
    assert grafana, image
    assert sdk.groups() == grafana.groups(), f"SDK for Grafana {'.'.join(sdk.groups())}, compose runs {image}"
