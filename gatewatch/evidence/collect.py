"""Query Prometheus for everything a session's evidence needs.

Why tolerant of failing queries: a gate whose query fails is a failed gate with the reason shown,
and a chart that cannot be drawn says why; the operator still gets a complete bundle to look at.
"""

from __future__ import annotations

import math
import time

from loguru import logger

from gatewatch.config import GatewatchConfig
from gatewatch.evidence.bot import collect_bots
from gatewatch.evidence.charts import Chart, ChartSpec, chart_specs
from gatewatch.evidence.gates import (
    Coverage,
    Gate,
    GateResult,
    SeriesValue,
    counter_increments,
    error_result,
    fill_range,
    format_value,
    judge,
    judge_window,
)
from gatewatch.evidence.model import AlertFiring, Evidence, Window, firing_intervals, probe_summaries
from gatewatch.evidence.prometheus_api import PrometheusClient, PrometheusError, choose_step
from gatewatch.thresholds import THRESHOLDS

ALERTS_EXPR = 'ALERTS{alertstate="firing"}'
ALERTS_GATE_ID = "no_critical_alerts"
LOOKBACK_SECONDS = 300.0
"""Prometheus's lookback: how far before the window a counter's baseline sample is looked for."""


def rate_window(step: float) -> str:
    """Averaging window for the fill-latency chart: several steps, at least a minute."""
    return f"{max(60, round(4 * step))}s"


def report_charts(step: float) -> list[ChartSpec]:
    """The report's charts with the limits table's lines drawn in."""
    return chart_specs(
        THRESHOLDS["quote_stale_after"].value,
        THRESHOLDS["max_clock_skew"].value,
        THRESHOLDS["memory_limit"].value,
        rate_window(step),
    )


def chart_lines(step: float = 60.0) -> dict[str, list[float]]:
    """Chart id -> the threshold values it draws (what the drift test compares with the table)."""
    return {spec.id: [t.value for t in spec.thresholds] for spec in report_charts(step)}


def _coverage(client: PrometheusClient, gate: Gate, window: Window, open_seconds: float) -> Coverage:
    """The share of the window (or of its market-open time) in which the gate's evidence exists."""
    values = client.query(gate.coverage_expr(window.seconds), window.end)
    finite = [v for _, v in values if math.isfinite(v)]
    share = min(finite) if finite else None
    span = open_seconds if gate.during == "market_open" else window.seconds
    missing = 0.0 if share is None else max(0.0, 1 - share) * span
    return Coverage(share, missing, gate.during, gate.evidence)


def exact_count(client: PrometheusClient, selector: str, window: Window) -> float:
    """Increments of a counter in the window from its raw samples (integers, resets-aware)."""
    grace = THRESHOLDS["coverage_scrape_max_age"].value
    series = client.samples(selector, window.seconds + LOOKBACK_SECONDS, window.end)
    return sum(counter_increments(s.points, window.start, grace) for s in series)


def market_open_seconds(client: PrometheusClient, window: Window) -> float:
    """Seconds of the window the exporter reported the market open."""
    expr = fill_range("avg_over_time(((max(gatewatch_market_open) == bool 1) or vector(0))[$__range:])",
                      window.seconds)
    values = client.query(expr, window.end)
    return values[0][1] * window.seconds if values and math.isfinite(values[0][1]) else 0.0


def judge_gate(client: PrometheusClient, gate: Gate, window: Window, open_seconds: float) -> GateResult:
    """Query one gate (its value, evidence coverage, extra figures) and judge it."""
    seconds = window.seconds
    if gate.count:
        values: list[tuple[dict[str, str], float]] = [({}, exact_count(client, gate.count, window))]
    else:
        values = client.query(gate.expr_for(seconds), window.end)
    coverage = _coverage(client, gate, window, open_seconds) if gate.evidence else None
    result = judge(gate, seconds, values, coverage)
    for shown in gate.show:
        found = client.query(fill_range(shown.expr, seconds), window.end)
        result.shown.append((shown.label, ", ".join(format_value(v, shown.unit) for _, v in found) or "no data"))
    return result


def count_critical_rows(result: GateResult, alerts: list[AlertFiring]) -> None:
    """no_critical_alerts counts the alert table's critical rows, so the number matches the table."""
    rows = [a for a in alerts if a.severity == "critical"]
    per_name: dict[str, int] = {}
    for row in rows:
        per_name[row.name] = per_name.get(row.name, 0) + 1
    result.series = [SeriesValue({"alertname": name}, float(n), False) for name, n in sorted(per_name.items())]
    if not rows:
        result.series = [SeriesValue({}, 0.0, True)]
    result.status = "fail" if rows else "pass"
    result.reason = (
        f"{len(rows)} critical alert row(s) in the Alerts table: "
        + ", ".join(f"{name} x{n}" for name, n in sorted(per_name.items()))
        if rows else ""
    )


def apply_risk_switch(result: GateResult, gate: Gate, config: GatewatchConfig) -> None:
    """session.risk_limits_fail says whether a risk-limit gate fails the session (default: yes)."""
    if gate.risk_limit and not getattr(config.session.risk_limits_fail, gate.risk_limit):
        result.critical = False
        result.note = (
            f"reported only: session.risk_limits_fail.{gate.risk_limit} is false, so a breach does not "
            "fail the session"
        )


def collect(client: PrometheusClient, gates: list[Gate], window: Window, config: GatewatchConfig) -> Evidence:
    """Judge every gate at the window's end and fetch charts, alerts and probe runs for the window."""
    seconds = window.seconds
    results = [judge_window(seconds, config.session.required_duration)]
    try:
        open_seconds = market_open_seconds(client, window)
    except PrometheusError:
        open_seconds = 0.0
    by_id: dict[str, tuple[Gate, GateResult]] = {}
    for gate in gates:
        try:
            result = judge_gate(client, gate, window, open_seconds)
        except PrometheusError as exc:
            logger.warning("gate {} could not be evaluated: {}", gate.id, exc)
            result = error_result(gate, seconds, str(exc))
        apply_risk_switch(result, gate, config)
        results.append(result)
        by_id[gate.id] = (gate, result)

    step = choose_step(window.start, window.end)
    evidence = Evidence(window, client.base_url, time.time(), results)
    for spec in report_charts(step):
        chart = Chart(spec)
        try:
            chart.series = client.query_range(spec.expr, window.start, window.end, step)
        except PrometheusError as exc:
            chart.error = str(exc)
        evidence.charts.append(chart)
    try:
        evidence.alerts = firing_intervals(
            client.query_range(ALERTS_EXPR, window.start, window.end, step), step
        )
        if ALERTS_GATE_ID in by_id and not by_id[ALERTS_GATE_ID][1].reason.startswith("query failed"):
            count_critical_rows(by_id[ALERTS_GATE_ID][1], evidence.alerts)
    except PrometheusError as exc:
        evidence.notes.append(f"alerts could not be read: {exc}")
    for result in results:
        logger.info("gate {}: {}{}", result.id, result.status, f" ({result.reason})" if result.reason else "")
    range_text = f"{max(1, round(seconds))}s"
    try:
        grace = THRESHOLDS["coverage_scrape_max_age"].value
        runs = [
            (s.labels, counter_increments(s.points, window.start, grace))
            for s in client.samples("gatewatch_probe_runs_total", seconds + LOOKBACK_SECONDS, window.end)
        ]
        success = client.query(f"last_over_time(gatewatch_probe_success[{range_text}])", window.end)
        evidence.probes = probe_summaries(runs, success)
    except PrometheusError as exc:
        evidence.notes.append(f"probe runs could not be read: {exc}")
    try:
        evidence.bots = collect_bots(client, seconds, window.end)
    except PrometheusError as exc:
        evidence.notes.append(f"the bot's figures could not be read: {exc}")
    return evidence
