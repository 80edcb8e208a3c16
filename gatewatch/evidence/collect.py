"""Query Prometheus for everything a session's evidence needs.

Why tolerant of failing queries: a gate whose query fails is a failed gate with the reason shown,
and a chart that cannot be drawn says why; the operator still gets a complete bundle to look at.
"""

from __future__ import annotations

import time

from loguru import logger

from gatewatch.config import GatewatchConfig
from gatewatch.evidence.bot import collect_bots
from gatewatch.evidence.charts import Chart, ChartSpec, chart_specs
from gatewatch.evidence.gates import Gate, error_result, judge, judge_window
from gatewatch.evidence.model import Evidence, Window, firing_intervals, probe_summaries
from gatewatch.evidence.prometheus_api import PrometheusClient, PrometheusError, choose_step
from gatewatch.thresholds import THRESHOLDS

ALERTS_EXPR = 'ALERTS{alertstate="firing"}'


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


def collect(client: PrometheusClient, gates: list[Gate], window: Window, config: GatewatchConfig) -> Evidence:
    """Judge every gate at the window's end and fetch charts, alerts and probe runs for the window."""
    seconds = window.seconds
    results = [judge_window(seconds, config.session.required_duration)]
    for gate in gates:
        try:
            results.append(judge(gate, seconds, client.query(gate.expr_for(seconds), window.end)))
        except PrometheusError as exc:
            logger.warning("gate {} could not be evaluated: {}", gate.id, exc)
            results.append(error_result(gate, seconds, str(exc)))
    for result in results:
        logger.info("gate {}: {}{}", result.id, result.status, f" ({result.reason})" if result.reason else "")

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
    except PrometheusError as exc:
        evidence.notes.append(f"alerts could not be read: {exc}")
    range_text = f"{max(1, round(seconds))}s"
    try:
        runs = client.query(
            f"sum by (probe, kind, result) (increase(gatewatch_probe_runs_total[{range_text}]))", window.end
        )
        success = client.query(f"last_over_time(gatewatch_probe_success[{range_text}])", window.end)
        evidence.probes = probe_summaries(runs, success)
    except PrometheusError as exc:
        evidence.notes.append(f"probe runs could not be read: {exc}")
    try:
        evidence.bots = collect_bots(client, seconds, window.end)
    except PrometheusError as exc:
        evidence.notes.append(f"the bot's figures could not be read: {exc}")
    return evidence
