"""Generate gatewatch's Grafana dashboards from the project's single sources of truth.

Why a generator instead of hand-edited JSON: the session gates live in prometheus/gates.yml (the
evidence command judges a session from the same file) and the quote-age limit lives in
config/gatewatch.yaml. Building the dashboards from those files means a gate is defined once; a
test (tests/stack/test_dashboards.py) fails when the committed JSON differs from what this script
produces, and runs every panel's PromQL against a real Prometheus scraping a real exporter.

Run ``python grafana/build_dashboards.py`` after changing a gate, a panel or the config defaults.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
GATES_FILE = ROOT / "prometheus" / "gates.yml"
CONFIG_FILE = ROOT / "config" / "gatewatch.yaml"
OUTPUT_DIR = ROOT / "grafana" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
SCHEMA_VERSION = 39
MEMORY_LIMIT_BYTES = 524288000
"""The memory_bounded gate's limit (500 MiB), drawn as a threshold line on the memory panel."""

ALLOW_EMPTY: dict[str, str] = {
    # panel title -> why the panel may legitimately show nothing in a healthy, fresh stack
    "Firing alerts": "a healthy stack has no firing alert",
    "Fill latency": "needs at least one filled probe order inside the rate window",
    "Gateway positions": "a flat account (the simulator starts flat) has no position series",
    "Position exposure against the risk limit": "a flat account has no exposure series (the limit shows)",
    "Probe orders sent": "the counter appears with the first active probe order",
    "Probe orders refused by a guard": "the counter appears only when a safety guard refuses an order",
    "Pacing back-offs": "appears only after IBKR reports a pacing error (100 or 162)",
    "Close escalations": "appears only when a close needs manual intervention",
}
"""Panels whose queries may return no series. Kept short: every other panel must return data in
the dashboard test. The session gate panels are exempt too, because each already states what no
data means (gates.yml ``no_data``); the test still checks that every metric any panel names is
exported by the exporter or recorded by a rule, so a misspelt name cannot hide behind either."""


@dataclass
class Layout:
    """Places panels left to right on a 24-column grid, wrapping to a new row when full."""

    x: int = 0
    y: int = 0
    row_height: int = 0
    next_id: int = 1

    def place(self, w: int, h: int) -> dict[str, int]:
        if self.x + w > 24:
            self.newline()
        pos = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.x += w
        self.row_height = max(self.row_height, h)
        return pos

    def newline(self) -> None:
        if self.x:
            self.y += self.row_height
        self.x, self.row_height = 0, 0

    def take_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


@dataclass
class Dashboard:
    """Accumulates panels; :meth:`render` returns the dashboard JSON model."""

    uid: str
    title: str
    description: str
    tags: list[str]
    templating: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    panels: list[dict[str, Any]] = field(default_factory=list)
    layout: Layout = field(default_factory=Layout)

    def row(self, title: str) -> None:
        self.layout.newline()
        self.panels.append({
            "type": "row", "id": self.layout.take_id(), "title": title, "collapsed": False,
            "gridPos": self.layout.place(24, 1), "panels": [],
        })
        self.layout.newline()

    def add(self, panel: dict[str, Any], w: int, h: int) -> None:
        panel = {"id": self.layout.take_id(), "gridPos": self.layout.place(w, h), "datasource": DATASOURCE,
                 **panel}
        self.panels.append(panel)

    def render(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": self.tags,
            "timezone": "browser",
            "editable": True,
            "graphTooltip": 1,
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "refresh": "10s",
            "time": {"from": "now-2h", "to": "now"},
            "timepicker": {},
            "fiscalYearStartMonth": 0,
            "liveNow": False,
            "annotations": {"list": [{
                "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
                "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
                "type": "dashboard",
            }]},
            "links": self.links,
            "templating": {"list": self.templating},
            "panels": self.panels,
        }


def target(expr: str, legend: str = "__auto", ref: str = "A", *, instant: bool = False) -> dict[str, Any]:
    """A Prometheus query target; instant queries for stats over ``$__range``, range otherwise."""
    return {
        "datasource": DATASOURCE, "refId": ref, "expr": expr, "legendFormat": legend,
        "range": not instant, "instant": instant, "editorMode": "code",
    }


def dashboard_link(title: str, uid: str) -> dict[str, Any]:
    return {"title": title, "type": "link", "url": f"/d/{uid}", "icon": "dashboard", "keepTime": True,
            "targetBlank": False, "tooltip": "", "includeVars": False, "asDropdown": False, "tags": []}


def thresholds(*steps: tuple[float | None, str]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": color, "value": value} for value, color in steps]}


def timeseries(title: str, targets: list[dict[str, Any]], *, unit: str = "short", description: str = "",
               threshold_steps: tuple[tuple[float | None, str], ...] = (), draw: str = "line",
               min_value: float | None = None) -> dict[str, Any]:
    custom: dict[str, Any] = {"drawStyle": draw, "lineWidth": 1, "fillOpacity": 10 if draw == "line" else 80,
                              "showPoints": "never", "spanNulls": False}
    defaults: dict[str, Any] = {"unit": unit, "custom": custom}
    if threshold_steps:
        defaults["thresholds"] = thresholds(*threshold_steps)
        custom["thresholdsStyle"] = {"mode": "line+area" if len(threshold_steps) > 2 else "line"}
    if min_value is not None:
        defaults["min"] = min_value
    return {
        "type": "timeseries", "title": title, "description": description, "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom",
                               "calcs": ["lastNotNull", "max"]},
                    "tooltip": {"mode": "multi", "sort": "desc"}},
    }


def state_timeline(title: str, targets: list[dict[str, Any]], *, ok_text: str, bad_text: str,
                   description: str = "") -> dict[str, Any]:
    mappings = [{"type": "value", "options": {
        "1": {"text": ok_text, "color": "green", "index": 0},
        "0": {"text": bad_text, "color": "red", "index": 1},
    }}]
    return {
        "type": "state-timeline", "title": title, "description": description, "targets": targets,
        "fieldConfig": {"defaults": {"mappings": mappings, "color": {"mode": "thresholds"},
                                     "thresholds": thresholds((None, "red"), (1, "green")),
                                     "custom": {"fillOpacity": 80, "lineWidth": 0}},
                        "overrides": []},
        "options": {"showValue": "never", "mergeValues": True, "rowHeight": 0.8,
                    "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}},
    }


def stat(title: str, targets: list[dict[str, Any]], *, unit: str = "short", description: str = "",
         threshold_steps: tuple[tuple[float | None, str], ...] = ((None, "blue"),),
         mappings: list[dict[str, Any]] | None = None, no_value: str = "no data") -> dict[str, Any]:
    return {
        "type": "stat", "title": title, "description": description, "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit, "noValue": no_value, "mappings": mappings or [],
                                     "color": {"mode": "thresholds"},
                                     "thresholds": thresholds(*threshold_steps)},
                        "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "colorMode": "background", "graphMode": "none", "textMode": "value_and_name",
                    "justifyMode": "auto", "orientation": "auto", "wideLayout": True},
    }


_PASS_IF = re.compile(r"^\s*(<=|>=|<|>|==)\s*(-?\d+(?:\.\d+)?(?:e-?\d+)?)\s*$")


def gate_query(expr: str, pass_if: str) -> str:
    """Turn a gate's expr and ``pass_if`` into a 1 (pass) / 0 (fail) query per series.

    PromQL's ``bool`` modifier keeps every series and gives 1 or 0, which is exactly what a
    pass/fail panel needs; the raw value stays in the panel's description via the expr.
    """
    match = _PASS_IF.match(pass_if)
    if not match:
        raise ValueError(f"gates.yml: pass_if must look like '<= 5' or '>= 1', got {pass_if!r}")
    op, value = match.groups()
    return f"({expr.strip()}) {op} bool {value}"


def gate_panel(gate: dict[str, Any]) -> dict[str, Any]:
    no_data = gate.get("no_data", "fail")
    if no_data not in {"pass", "fail"}:
        raise ValueError(f"gates.yml: gate {gate['id']}: no_data must be pass or fail, got {no_data!r}")
    pass_fail = [{"type": "value", "options": {
        "1": {"text": "PASS", "color": "green", "index": 0},
        "0": {"text": "FAIL", "color": "red", "index": 1},
    }}]
    description = (f"Gate `{gate['id']}`{' (critical)' if gate.get('critical') else ''}: every series of "
                   f"`{gate['expr'].strip()}` over the selected range must be {gate['pass_if']}. "
                   f"No series at all counts as {no_data.upper()}. Defined in prometheus/gates.yml.")
    if gate.get("fail_hint"):
        description += f" A failure: {' '.join(gate['fail_hint'].split())}."
    panel = stat(gate["title"], [target(gate_query(gate["expr"], gate["pass_if"]),
                                        "{{symbol}}{{process}}{{probe}}", instant=True)],
                 description=description, threshold_steps=((None, "red"), (1, "green")),
                 mappings=pass_fail, no_value=f"{no_data.upper()} (no data)")
    panel["options"]["textMode"] = "value"
    return panel


def load_gates(path: Path = GATES_FILE) -> list[dict[str, Any]]:
    gates = yaml.safe_load(path.read_text(encoding="utf-8"))["gates"]
    for gate in gates:
        for key in ("id", "title", "expr", "pass_if"):
            if key not in gate:
                raise ValueError(f"{path}: gate {gate.get('id', '?')}: missing {key!r}")
    return list(gates)


def quote_stale_after(path: Path = CONFIG_FILE) -> float:
    """The session's quote-age limit from the example config (5 s), for the threshold line."""
    sys.path.insert(0, str(ROOT))
    from gatewatch.config import load_config

    return load_config(path, environ={}).session.quote_stale_after


def session_dashboard(gates: list[dict[str, Any]], stale_after: float) -> dict[str, Any]:
    d = Dashboard(
        uid="gatewatch-session", title="Live validation session",
        description="The 2-hour paper session: each gate from prometheus/gates.yml judged over the selected "
                    "time range, with the signals behind it.",
        tags=["gatewatch", "ib-gateway"],
        links=[dashboard_link("Probe detail", "gatewatch-probes")],
    )
    d.row("Session gates (over the selected time range; pick exactly the session's window)")
    for gate in gates:
        d.add(gate_panel(gate), 4, 4)

    d.row("Connection")
    d.add(state_timeline("Gateway connection", [
        target("gatewatch_gateway_connected", "API connected"),
        target("1 - gatewatch_gateway_connectivity_lost", "IB servers reachable (not 1100)", "B"),
        target("1 - gatewatch_gateway_competing_session", "market data ours (not 10197)", "C"),
    ], ok_text="up", bad_text="DOWN", description="Any red stretch is a disconnect the session gate counts."),
        16, 6)
    d.add(stat("Disconnects in range", [target("sum(increase(gatewatch_gateway_disconnects_total[$__range]))",
                                                instant=True)],
               threshold_steps=((None, "green"), (0.5, "red")),
               description="Session gate: none at all."), 4, 6)
    d.add(stat("Reconnect attempts in range",
               [target("sum(increase(gatewatch_gateway_reconnect_attempts_total[$__range]))", instant=True)],
               threshold_steps=((None, "green"), (0.5, "orange"))), 4, 6)
    d.add(state_timeline("Data farms", [target("gatewatch_data_farm_connected", "{{type}} {{farm}}")],
                         ok_text="ok", bad_text="BROKEN",
                         description="2103/2105/2157 broken; 2104/2106/2158/2107/2108 fine."), 24, 5)

    d.row("Market data")
    d.add(timeseries("Quote age per symbol", [target("gatewatch_quote_age_seconds", "{{symbol}}")], unit="s",
                     threshold_steps=((None, "green"), (stale_after, "red")), min_value=0,
                     description=f"Seconds since the newest quote; the session needs every symbol under "
                                 f"{stale_after:g} s while the market is open."), 12, 8)
    d.add(state_timeline("Quote sanity (bid > 0, ask > bid)",
                         [target("gatewatch_quote_sane", "{{symbol}}"),
                          target("gatewatch_market_open", "market open ({{exchange}})", "B")],
                         ok_text="ok", bad_text="BAD"), 12, 8)
    d.add(timeseries("Quote updates per second", [
        target("sum by (symbol) (rate(gatewatch_quote_ticks_total[$__rate_interval]))", "{{symbol}}")],
        unit="reqps"), 12, 7)
    d.add(timeseries("Spread", [target("gatewatch_quote_spread", "{{symbol}}")], unit="currencyUSD"), 12, 7)

    d.row("Orders and positions")
    fill = "sum by (le) (rate(gatewatch_order_fill_latency_seconds_bucket[$__rate_interval]))"
    d.add(timeseries("Fill latency", [
        target(f"histogram_quantile(0.5, {fill})", "p50"),
        target(f"histogram_quantile(0.95, {fill})", "p95", "B"),
        target(f"histogram_quantile(0.99, {fill})", "p99", "C"),
    ], unit="s", draw="points",
        description="Submit-to-execution latency of the active probes' paper orders."), 12, 8)
    d.add(timeseries("Reconciliation drift", [target("gatewatch_position_drift", "{{symbol}} vs {{source}}")],
                     threshold_steps=((None, "green"), (0.5, "red")),
                     description="Gateway position minus the compared source's; anything but 0 fails the "
                                 "session."), 12, 8)
    d.add(timeseries("Gateway positions", [target("gatewatch_gateway_position", "{{symbol}} {{sec_type}}")]),
          12, 6)
    d.add(timeseries("Account", [
        target("gatewatch_account_net_liquidation", "net liquidation {{currency}}"),
        target("gatewatch_account_cash", "cash {{currency}}", "B"),
    ], unit="currencyUSD"), 12, 6)
    d.add(timeseries("Position exposure against the risk limit", [
        target("gatewatch_position_exposure_ratio", "{{symbol}}"),
        target("gatewatch_risk_max_position_ratio", "limit (probes.max_position_ratio)", "B"),
    ], unit="percentunit", min_value=0,
        description="Position value / net liquidation per symbol; above the limit for a minute raises "
                    "PositionLimitExceeded (warning)."), 16, 6)
    d.add(stat("Day trades remaining", [target("gatewatch_account_day_trades_remaining", instant=True)],
               threshold_steps=((None, "green"), (0, "orange"), (2, "green")),
               mappings=[{"type": "value", "options": {"-1": {"text": "unlimited", "color": "green",
                                                              "index": 0}}}],
               description="Pattern-day-trader allowance the Gateway reports (-1: unlimited). Every order "
                           "probe run is a day trade; 1 or 0 left raises DayTradesLow (warning)."), 8, 6)

    d.row("Clock and resources")
    d.add(timeseries("Clock skew (host minus IB) with uncertainty", [
        target("gatewatch_clock_skew_seconds", "skew"),
        target("gatewatch_clock_skew_seconds + gatewatch_clock_skew_uncertainty_seconds", "upper bound", "B"),
        target("gatewatch_clock_skew_seconds - gatewatch_clock_skew_uncertainty_seconds", "lower bound", "C"),
    ], unit="s", threshold_steps=((None, "red"), (-0.5, "green"), (0.5, "red")),
        description="IB answers in whole seconds, so the estimate carries an uncertainty; the session "
                    "needs |skew| under 0.5 s."), 12, 8)
    d.add(timeseries("Heartbeat round trip", [
        target("histogram_quantile(0.95, sum by (le) (rate(gatewatch_heartbeat_rtt_seconds_bucket"
               "[$__rate_interval])))", "p95"),
    ], unit="s"), 12, 8)
    d.add(timeseries("Resident memory per process", [
        target("gatewatch_process_resident_memory_bytes", "{{process}}")], unit="bytes",
        threshold_steps=((None, "green"), (MEMORY_LIMIT_BYTES, "red")), min_value=0), 8, 8)
    d.add(timeseries("CPU per process", [
        target("rate(gatewatch_process_cpu_seconds_total[$__rate_interval])", "{{process}}")],
        unit="percentunit", min_value=0), 8, 8)
    d.add(timeseries("Host", [
        target("gatewatch_host_cpu_usage_ratio", "CPU"),
        target("gatewatch_host_memory_usage_ratio", "memory", "B"),
    ], unit="percentunit", min_value=0), 8, 8)

    d.row("Errors and alerts")
    d.add(timeseries("API errors by code", [
        target("sum by (code, class) (increase(gatewatch_api_errors_total[$__rate_interval]))",
               "{{code}} {{class}}")], draw="bars",
        description="Error/notice messages from the Gateway (farm notices 2104/2106/2158 are normal)."),
        12, 8)
    d.add({
        "type": "table", "title": "Firing alerts",
        "description": "Alerts Prometheus currently holds as firing (critical ones fail the session).",
        "targets": [target('ALERTS{alertstate="firing"}', instant=True)],
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {"showHeader": True},
        "transformations": [{"id": "organize", "options": {
            "excludeByName": {"Time": True, "Value": True, "__name__": True, "alertstate": True}}}],
    }, 12, 8)
    return d.render()


def probe_dashboard() -> dict[str, Any]:
    d = Dashboard(
        uid="gatewatch-probes", title="Probe detail",
        description="Every probe, passive and active: last result, duration, runs, and the active probes' "
                    "paper orders.",
        tags=["gatewatch", "ib-gateway"],
        links=[dashboard_link("Session", "gatewatch-session")],
        templating=[
            {"name": "kind", "label": "Kind", "type": "custom", "query": "passive,active",
             "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
             "options": [], "includeAll": True, "allValue": ".*", "multi": True, "hide": 0},
            {"name": "probe", "label": "Probe", "type": "query", "datasource": DATASOURCE,
             "query": {"query": 'label_values(gatewatch_probe_success{kind=~"$kind"}, probe)',
                       "refId": "PrometheusVariableQueryEditor-VariableQuery"},
             "definition": 'label_values(gatewatch_probe_success{kind=~"$kind"}, probe)',
             "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
             "options": [], "includeAll": True, "allValue": ".*", "multi": True, "refresh": 2, "sort": 1,
             "regex": "", "hide": 0},
        ],
    )
    sel = 'probe=~"$probe", kind=~"$kind"'
    d.row("Probe results")
    d.add(state_timeline("Probe success", [target(f"gatewatch_probe_success{{{sel}}}", "{{kind}} {{probe}}")],
                         ok_text="pass", bad_text="FAIL"), 24, 8)
    d.add(timeseries("Probe duration", [target(f"gatewatch_probe_duration_seconds{{{sel}}}",
                                               "{{kind}} {{probe}}")], unit="s", min_value=0), 12, 8)
    d.add(timeseries("Seconds since the probe last finished", [
        target(f"time() - gatewatch_probe_last_run_timestamp_seconds{{{sel}}}", "{{kind}} {{probe}}")],
        unit="s", min_value=0,
        description="A probe that stops running shows here as a climbing line."), 12, 8)
    d.add(timeseries("Runs by result (per probe, over the interval)", [
        target("sum by (kind, probe, result) "
               f"(increase(gatewatch_probe_runs_total{{{sel}}}[$__rate_interval]))",
               "{{kind}} {{probe}} {{result}}")], draw="bars"), 12, 8)
    d.add(stat("Failed runs in range", [
        target(f"sum by (kind, probe) (increase(gatewatch_probe_runs_total{{{sel}, result=\"failure\"}}"
               f"[$__range]))", "{{kind}} {{probe}}", instant=True)],
        threshold_steps=((None, "green"), (0.5, "red"))), 12, 8)

    d.row("Active probes: paper orders")
    d.add(stat("Probe orders sent", [
        target("sum by (action) (increase(gatewatch_probe_orders_total[$__range]))", "{{action}}",
               instant=True)]), 8, 5)
    d.add(stat("Probe orders refused by a guard", [
        target("sum by (reason) (increase(gatewatch_probe_orders_refused_total[$__range]))", "{{reason}}",
               instant=True)], threshold_steps=((None, "green"), (0.5, "orange"))), 8, 5)
    d.add(stat("Close escalations", [
        target('sum by (probe) (increase(gatewatch_order_close_escalations_total{probe!="close_retry"}'
               '[$__range]))', "{{probe}}", instant=True)],
               threshold_steps=((None, "green"), (0.5, "red")),
               description="A close that never filled after every re-price: flatten by hand. The "
                           "close_retry probe's deliberate escalation on every run is left out."), 8, 5)
    d.add(timeseries("Probe orders and positions still open", [
        target("gatewatch_probe_open_orders", "open orders"),
        target("gatewatch_probe_positions", "positions", "B"),
    ], min_value=0, description="From the probe journal; both return to 0 after every run."), 12, 7)
    d.add(timeseries("Pacing back-offs", [
        target("sum by (code) (increase(gatewatch_pacing_backoffs_total[$__rate_interval]))", "{{code}}")],
        draw="bars"), 12, 7)

    d.row("Passive probe details")
    d.add(timeseries("Historical request latency (p95) and bars", [
        target("histogram_quantile(0.95, sum by (le) "
               "(rate(gatewatch_historical_request_duration_seconds_bucket[$__rate_interval])))",
               "p95 latency"),
        target("gatewatch_historical_bars", "bars {{symbol}}", "B"),
    ]), 12, 7)
    d.add(timeseries("Connects, reconnect attempts, historical timeouts", [
        target("increase(gatewatch_gateway_connects_total[$__rate_interval])", "connects"),
        target("increase(gatewatch_gateway_reconnect_attempts_total[$__rate_interval])", "reconnect attempts",
               "B"),
        target("increase(gatewatch_historical_timeouts_total[$__rate_interval])", "historical timeouts", "C"),
    ], draw="bars"), 12, 7)
    return d.render()


def build() -> dict[str, dict[str, Any]]:
    """File name -> dashboard model, for every dashboard gatewatch ships."""
    return {
        "session.json": session_dashboard(load_gates(), quote_stale_after()),
        "probes.json": probe_dashboard(),
    }


def render_json(model: dict[str, Any]) -> str:
    return json.dumps(model, indent=2, sort_keys=False, allow_nan=False) + "\n"


def iter_targets(model: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(panel, target) pairs of a dashboard, rows skipped."""
    for panel in model["panels"]:
        for tgt in panel.get("targets", []):
            yield panel, tgt


def main() -> int:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, model in build().items():
        (OUTPUT_DIR / name).write_text(render_json(model), encoding="utf-8")
        print(f"wrote {OUTPUT_DIR / name} ({len(model['panels'])} panels)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
