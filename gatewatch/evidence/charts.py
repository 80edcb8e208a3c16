"""The report's charts: which series to draw, and inline SVG drawn in Python.

Why SVG by hand: the report must open offline, years later, on any machine, with no JavaScript or
CDN. A line chart is a polyline, some ticks and a legend; that is less code than a dependency.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gatewatch.evidence.prometheus_api import RangeSeries

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
THRESHOLD_COLOUR = "#d62728"


@dataclass(frozen=True)
class Threshold:
    """A horizontal line the series should stay on one side of."""

    value: float
    label: str


@dataclass(frozen=True)
class ChartSpec:
    """One chart of the report: a range query and how to read it."""

    id: str
    title: str
    expr: str
    unit: str
    legend: tuple[str, ...] = ()
    thresholds: tuple[Threshold, ...] = ()
    explanation: str = ""
    name: str = ""
    """The series' name in the legend when the legend labels say nothing (one unlabelled series)."""


@dataclass
class Chart:
    """A chart spec with the data a range query returned (or the error it gave)."""

    spec: ChartSpec
    series: list[RangeSeries] = field(default_factory=list)
    error: str = ""


def chart_specs(
    quote_stale_after: float, max_clock_skew: float, memory_limit: float, rate_window: str
) -> list[ChartSpec]:
    """The charts every evidence report carries, with the session's thresholds drawn in."""
    return [
        ChartSpec(
            "connection",
            "Gateway connection (1 = connected)",
            "gatewatch_gateway_connected",
            "",
            explanation="Drops to 0 whenever the API connection was down.",
            name="Gateway API connected",
        ),
        ChartSpec(
            "quote_age",
            "Quote age per symbol",
            "gatewatch_quote_age_seconds",
            "s",
            ("symbol",),
            (Threshold(quote_stale_after, f"{quote_stale_after:g} s stale"),),
            "Seconds since the newest quote; must stay under the line while the market is open.",
        ),
        ChartSpec(
            "fill_latency",
            "Probe order fill latency (mean)",
            f"increase(gatewatch_order_fill_latency_seconds_sum[{rate_window}])"
            f" / increase(gatewatch_order_fill_latency_seconds_count[{rate_window}])",
            "s",
            explanation=f"Submit-to-execution time of probe orders, averaged over {rate_window}.",
            name=f"mean fill latency ({rate_window} window)",
        ),
        ChartSpec(
            "reconciliation_drift",
            "Position drift (Gateway minus ledger/bot)",
            "gatewatch_position_drift",
            "",
            ("symbol", "source"),
            (Threshold(0, "no drift"),),
            "Any value other than 0 means positions did not reconcile.",
        ),
        ChartSpec(
            "clock_skew",
            "Host clock minus IB server time",
            "gatewatch_clock_skew_seconds",
            "s",
            thresholds=(
                Threshold(max_clock_skew, f"+{max_clock_skew:g} s"),
                Threshold(-max_clock_skew, f"-{max_clock_skew:g} s"),
            ),
            explanation="IB time has one-second resolution; the estimate combines several samples.",
            name="skew estimate",
        ),
        ChartSpec(
            "memory",
            "Resident memory per process",
            "gatewatch_process_resident_memory_bytes",
            "B",
            ("process",),
            (Threshold(memory_limit, _format_value(memory_limit, "B")),),
            "Exporter and bot must stay under the line and not grow without bound.",
        ),
    ]


def series_name(series: RangeSeries, legend: tuple[str, ...], name: str = "") -> str:
    """A legend entry naming the series: the chosen labels, else the chart's series name, else the metric."""
    parts = [f"{key}={series.labels[key]}" for key in legend if series.labels.get(key)]
    if parts:
        return ", ".join(parts)
    return name or series.labels.get("__name__") or "series"


DASHES = ("", "7 3", "2 3", "9 3 2 3", "4 4", "1 2")
"""One dash pattern per series, so lines that lie on top of each other stay visible."""


def nice_step(span: float, target: int = 5) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) giving about ``target`` ticks."""
    raw = span / max(target, 1)
    if raw <= 0 or not math.isfinite(raw):
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600)


def time_ticks(start: float, end: float, target: int = 6) -> list[float]:
    """Tick times on round clock values (every 10 s, 5 min, 30 min ...), about ``target`` of them."""
    span = max(end - start, 1e-9)
    step = next((s for s in TIME_STEPS if span / s <= target), TIME_STEPS[-1])
    first = math.ceil(start / step) * step
    return [t for t in (first + i * step for i in range(int(span // step) + 2)) if start <= t <= end]


def _format_value(value: float, unit: str) -> str:
    if unit == "B":
        for factor, suffix in ((1024**3, "GiB"), (1024**2, "MiB"), (1024, "KiB")):
            if abs(value) >= factor:
                return f"{value / factor:.3g} {suffix}"
        return f"{value:.0f} B"
    return f"{value:.3g}{(' ' + unit) if unit else ''}"


def _nice_range(low: float, high: float) -> tuple[float, float]:
    if low == high:
        pad = abs(low) * 0.1 or 1.0
        return low - pad, high + pad
    pad = (high - low) * 0.08
    return low - pad if low < 0 or low - pad >= 0 else 0.0, high + pad


def _segments(points: list[tuple[float, float]], gap: float) -> list[list[tuple[float, float]]]:
    """Split at missing samples so an outage shows as a gap, not as a straight line across it."""
    segments: list[list[tuple[float, float]]] = []
    previous: float | None = None
    for t, v in points:
        if not math.isfinite(v):
            previous = None
            continue
        if previous is None or t - previous > gap:
            segments.append([])
        segments[-1].append((t, v))
        previous = t
    return segments


def render_svg(
    chart: Chart, start: float, end: float, step: float, width: int = 880, height: int = 230
) -> str:
    """An inline SVG line chart of ``chart`` over [start, end], thresholds dashed in red."""
    left, right, top, bottom = 70, 10, 10, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    spec = chart.spec
    values = [v for s in chart.series for _, v in s.points if math.isfinite(v)]
    title = html.escape(spec.title)
    if not values:
        message = html.escape(chart.error or "no data in this window")
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{title}" '
            f'width="{width}" height="60" viewBox="0 0 {width} 60">'
            f'<rect width="{width}" height="60" fill="#fafafa" stroke="#ddd"/>'
            f'<text x="{width / 2}" y="35" text-anchor="middle" fill="#666" font-size="13">'
            f"{message}</text></svg>"
        )
    values += [t.value for t in spec.thresholds]
    y_low, y_high = _nice_range(min(values), max(values))
    span_t = max(end - start, 1e-9)

    def x(t: float) -> float:
        return left + (t - start) / span_t * plot_w

    def y(v: float) -> float:
        return top + (1 - (v - y_low) / (y_high - y_low)) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{title}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fff" stroke="#ccc"/>',
    ]
    mib = 1024.0**2 if spec.unit == "B" and y_high - y_low >= 1024**2 else 1.0  # round MiB, not round bytes
    y_step = nice_step((y_high - y_low) / mib) * mib
    value = math.ceil(y_low / y_step) * y_step
    while value <= y_high + 1e-12:
        yy = y(value)
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#eee"/>')
        parts.append(
            f'<text x="{left - 4}" y="{yy + 4:.1f}" text-anchor="end" fill="#444">'
            f"{html.escape(_format_value(0.0 if abs(value) < y_step / 1e6 else value, spec.unit))}</text>"
        )
        value += y_step
    ticks = time_ticks(start, end)
    seconds_shown = len(ticks) > 1 and (ticks[1] - ticks[0]) < 60
    for t in ticks:
        label = datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S" if seconds_shown else "%H:%M")
        parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top}" y2="{top + plot_h}" stroke="#f0f0f0"/>')
        parts.append(
            f'<text x="{x(t):.1f}" y="{height - 10}" text-anchor="middle" fill="#444">{label} UTC</text>'
        )
    for threshold in spec.thresholds:
        yy = y(threshold.value)
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="{THRESHOLD_COLOUR}" '
            f'stroke-dasharray="6 4"/><text x="{left + plot_w - 4}" y="{yy - 3:.1f}" text-anchor="end" '
            f'fill="{THRESHOLD_COLOUR}">{html.escape(threshold.label)}</text>'
        )
    for index, series in enumerate(chart.series):
        colour = PALETTE[index % len(PALETTE)]
        dash = DASHES[index % len(DASHES)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        name = html.escape(series_name(series, spec.legend, spec.name))
        parts.append(f'<g class="series" data-series="{name}"><title>{name}</title>')
        for segment in _segments(series.points, gap=max(2.5 * step, 2.0)):
            if len(segment) == 1:
                ((t, v),) = segment
                parts.append(f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="2" fill="{colour}"/>')
                continue
            coords = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in segment)
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="{2.5 - 0.4 * (index % 3):.1f}"'
                f'{dash_attr} points="{coords}"/>'
            )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def legend_html(chart: Chart) -> str:
    """The colour key under a chart (HTML, so long label sets wrap)."""
    items = []
    if not any(math.isfinite(v) for s in chart.series for _, v in s.points):
        return ""
    for index, series in enumerate(chart.series):
        colour = PALETTE[index % len(PALETTE)]
        name = html.escape(series_name(series, chart.spec.legend, chart.spec.name))
        finite = [v for _, v in series.points if math.isfinite(v)]
        last = f" (last {_format_value(finite[-1], chart.spec.unit)})" if finite else " (no data)"
        items.append(f'<span class="key"><i style="background:{colour}"></i>{name}{html.escape(last)}</span>')
    return f'<div class="legend">{"".join(items)}</div>' if items else ""
