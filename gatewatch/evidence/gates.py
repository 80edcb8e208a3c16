"""Session gates: load prometheus/gates.yml and judge query results against them.

Why a separate module with no I/O besides reading the file: the verdict is the one thing the
operator signs, so its rules must be testable without a Prometheus, and there must be exactly one
definition of each gate (the same file feeds the Grafana session dashboard).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from gatewatch import safe_yaml
from gatewatch.config import ConfigError, GatewatchConfig
from gatewatch.thresholds import THRESHOLDS, Threshold, duration_text, human, substitute

DEFAULT_GATES_PATH = Path(__file__).resolve().parents[2] / "prometheus" / "gates.yml"
WINDOW_GATE_ID = "window_length"

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_PASS_IF_RE = re.compile(r"^\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*$")

Status = Literal["pass", "fail"]


UNITS = ("s", "bytes", "count", "ratio", "state")
DURING = ("window", "market_open")
RISK_LIMITS = ("position_limit", "day_trades", "risk_per_trade")


@dataclass(frozen=True)
class Shown:
    """An extra figure printed beside a gate (gates.yml ``show``), e.g. the clock's skew bounds."""

    label: str
    expr: str
    unit: str


@dataclass(frozen=True)
class Gate:
    """One session gate: a PromQL expression and the condition every returned series must meet."""

    id: str
    title: str
    expr: str
    op: str
    threshold: float
    no_data: Status
    critical: bool
    fail_hint: str = ""
    """What a failure means, in words (gates.yml ``fail_hint``), appended to the reason."""
    measures: str = ""
    """What the gate measures, in words (the report's "why" column)."""
    unit: str = "state"
    no_data_means: str = ""
    evidence: str = ""
    """A selector whose presence over the window is the gate's evidence (empty: not checked)."""
    during: str = "window"
    count: str = ""
    """A counter selector counted exactly from raw samples (empty: the expr's value is judged)."""
    show: tuple[Shown, ...] = ()
    risk_limit: str = ""

    @property
    def pass_if(self) -> str:
        return f"{self.op} {self.threshold:.10g}"

    @property
    def threshold_text(self) -> str:
        """The condition in the gate's unit: ``<= 1.5 GiB``, ``>= 2h``, ``<= 20%``."""
        return f"{self.op} {format_value(self.threshold, self.unit)}"

    def as_mapping(self) -> dict[str, Any]:
        """The gate as gates.yml spells it, limits filled in (for the dashboard builder)."""
        return {
            "id": self.id,
            "title": self.title,
            "expr": self.expr,
            "pass_if": self.pass_if,
            "no_data": self.no_data,
            "critical": self.critical,
            "fail_hint": self.fail_hint,
            "measures": self.measures,
            "unit": self.unit,
            "no_data_means": self.no_data_means,
        }

    def expr_for(self, window_seconds: float) -> str:
        """The expression with ``$__range`` replaced by the window, in whole seconds (``7200s``)."""
        return fill_range(self.expr, window_seconds)

    def coverage_expr(self, window_seconds: float) -> str:
        """Share (0-1) of the window, or of its market-open time, in which the evidence exists."""
        present = f"((count({self.evidence}) > bool 0) or vector(0))"
        if self.during == "market_open":
            expr = (
                f"sum_over_time(({present} * on() (max(gatewatch_market_open) == 1))[$__range:])"
                " / on() sum_over_time((max(gatewatch_market_open) == 1)[$__range:])"
            )
        else:
            expr = f"avg_over_time({present}[$__range:])"
        return fill_range(expr, window_seconds)

    def satisfied_by(self, value: float) -> bool:
        """NaN never passes: a gate that cannot be computed has not been shown to hold."""
        return not math.isnan(value) and _OPERATORS[self.op](value, self.threshold)


def fill_range(expr: str, window_seconds: float) -> str:
    """Replace Grafana's ``$__range_s`` (seconds) and ``$__range`` (duration) by the window."""
    seconds = max(1, round(window_seconds))
    return expr.replace("$__range_s", str(seconds)).replace("$__range", f"{seconds}s")


def format_value(value: float, unit: str) -> str:
    """A gate's value as a person reads it: ``1.2 GiB``, ``1h``, ``31%``, ``3``, ``0.74 s``."""
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if unit == "bytes":
        return human(value, "bytes")
    if unit == "s":
        return duration_text(round(value) if abs(value) >= 60 else value)
    if unit == "ratio":
        return f"{value * 100:.3g}%"
    if unit == "count":
        return f"{value:.0f}" if float(value).is_integer() or abs(value) >= 10 else f"{value:.3g}"
    return f"{value:g}"


@dataclass
class SeriesValue:
    """One series an instant query returned: its labels and value."""

    labels: dict[str, str]
    value: float
    passed: bool


@dataclass
class Coverage:
    """How much of the window (or of its market-open time) the gate's evidence covers."""

    share: float | None
    """0-1; None when there was no market-open time to cover."""
    seconds_missing: float
    during: str
    evidence: str

    def to_json(self) -> dict[str, Any]:
        return {
            "share": None if self.share is None else round(self.share, 4),
            "seconds_missing": round(self.seconds_missing, 1),
            "during": self.during,
            "evidence": self.evidence,
        }


@dataclass
class GateResult:
    """A judged gate, as written to verdict.json."""

    id: str
    title: str
    status: Status
    critical: bool
    threshold: str
    expr: str
    series: list[SeriesValue] = field(default_factory=list)
    reason: str = ""
    unit: str = "state"
    measures: str = ""
    no_data_means: str = ""
    coverage: Coverage | None = None
    shown: list[tuple[str, str]] = field(default_factory=list)
    """(label, value text) pairs printed beside the gate."""
    note: str = ""
    """Why a failed gate does not fail the session, when it does not (a risk-limit switch)."""

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def value_text(self, value: float) -> str:
        return format_value(value, self.unit)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "critical": self.critical,
            "threshold": self.threshold,
            "unit": self.unit,
            "measures": self.measures,
            "no_data_means": self.no_data_means,
            "expr": self.expr,
            "values": [
                {"labels": s.labels, "value": _json_number(s.value), "text": self.value_text(s.value),
                 "pass": s.passed}
                for s in self.series
            ],
            "coverage": self.coverage.to_json() if self.coverage else None,
            "shown": [{"label": label, "value": text} for label, text in self.shown],
            "reason": self.reason,
            "note": self.note,
        }


def _json_number(value: float) -> float | str:
    """JSON has no NaN/Inf; Prometheus writes them as strings, so do the same."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return value


def _text(raw: dict[str, Any], key: str, where: str, *, required: bool) -> str:
    value = raw.get(key, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise ConfigError(f"{where}.{key}: {'required ' if required else 'expected a '}string")
    return " ".join(value.split())


def _choice(raw: dict[str, Any], key: str, where: str, choices: tuple[str, ...], default: str) -> str:
    value = raw.get(key, default)
    if value not in choices:
        raise ConfigError(f"{where}.{key}: expected one of {', '.join(choices)}, got {value!r}")
    return str(value)


def parse_gate(
    raw: Any, index: int, source: Path | str, thresholds: dict[str, Threshold] | None = None
) -> Gate:
    """Validate one entry of gates.yml, naming the entry and field on error.

    ``${name}`` references to the limits table are replaced first: by the number in ``expr`` and
    ``pass_if``, by the human form ("1.5 GiB") in ``title``, ``fail_hint`` and the other texts.
    """
    where = f"{source}: gates[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping")
    for key in ("id", "title", "expr", "pass_if"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise ConfigError(f"{where}.{key}: required string")
    table = THRESHOLDS if thresholds is None else thresholds
    raw = dict(raw)
    for key in ("title", "expr", "pass_if", "fail_hint", "measures", "no_data_means", "evidence", "count"):
        if isinstance(raw.get(key), str):
            human_form = key in ("title", "fail_hint", "measures", "no_data_means")
            raw[key] = substitute(raw[key], table, human_form=human_form, where=f"{where}.{key}")
    match = _PASS_IF_RE.match(raw["pass_if"])
    if not match:
        raise ConfigError(
            f"{where}.pass_if: expected an operator and a number, e.g. '<= 5', got {raw['pass_if']!r}"
        )
    no_data = _choice(raw, "no_data", where, ("pass", "fail"), "fail")
    critical = raw.get("critical", True)
    if not isinstance(critical, bool):
        raise ConfigError(f"{where}.critical: expected true or false")
    show: list[Shown] = []
    items = raw.get("show", [])
    if not isinstance(items, list):
        raise ConfigError(f"{where}.show: expected a list")
    for i, item in enumerate(items):
        at = f"{where}.show[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{at}: expected a mapping with label, expr, unit")
        show.append(Shown(_text(item, "label", at, required=True),
                          substitute(_text(item, "expr", at, required=True), table, human_form=False, where=at),
                          _choice(item, "unit", at, UNITS, "state")))
    risk_limit = raw.get("risk_limit", "")
    if risk_limit and risk_limit not in RISK_LIMITS:
        raise ConfigError(f"{where}.risk_limit: expected one of {', '.join(RISK_LIMITS)}, got {risk_limit!r}")
    return Gate(
        raw["id"],
        " ".join(raw["title"].split()),
        raw["expr"],
        match.group(1),
        float(match.group(2)),
        no_data,  # type: ignore[arg-type]
        critical,
        _text(raw, "fail_hint", where, required=False),
        measures=_text(raw, "measures", where, required=True),
        unit=_choice(raw, "unit", where, UNITS, "state"),
        no_data_means=_text(raw, "no_data_means", where, required=True),
        evidence=_text(raw, "evidence", where, required=False),
        during=_choice(raw, "during", where, DURING, "window"),
        count=_text(raw, "count", where, required=False),
        show=tuple(show),
        risk_limit=str(risk_limit),
    )


def load_gates(
    path: Path | str = DEFAULT_GATES_PATH, overrides: dict[str, float] | None = None
) -> list[Gate]:
    """Read gates.yml; a malformed file is a :class:`ConfigError` (exit status 2).

    ``overrides`` replaces limits of the table for this reading (the configuration's
    session.required_duration, for one evidence run).
    """
    source = Path(path)
    try:
        raw = safe_yaml.load_file(source)
    except safe_yaml.YamlFileError as exc:
        raise ConfigError(f"gates: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("gates"), list) or not raw["gates"]:
        raise ConfigError(f"{source}: gates: expected a non-empty list")
    table = dict(THRESHOLDS)
    for name, value in (overrides or {}).items():
        table[name] = replace(table[name], value=float(value))
    gates = [parse_gate(item, i, source, table) for i, item in enumerate(raw["gates"])]
    ids = [g.id for g in gates]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ConfigError(f"{source}: gates: duplicate id(s) {', '.join(duplicates)}")
    return gates


def session_gates(config: GatewatchConfig, path: Path | str = DEFAULT_GATES_PATH) -> list[Gate]:
    """The gates for one session: the table's limits, with the configuration's required duration."""
    return load_gates(path, overrides={"required_duration": config.session.required_duration})


def _result(gate: Gate, window_seconds: float, status: Status, series: list[SeriesValue],
            reason: str) -> GateResult:
    return GateResult(
        gate.id, gate.title, status, gate.critical, gate.threshold_text, gate.expr_for(window_seconds),
        series, reason, unit=gate.unit, measures=gate.measures, no_data_means=gate.no_data_means,
    )


def judge(
    gate: Gate,
    window_seconds: float,
    result: list[tuple[dict[str, str], float]],
    coverage: Coverage | None = None,
) -> GateResult:
    """Judge an instant-query result: every series must satisfy pass_if; none → the no_data rule.

    A gate whose evidence covers less than the table's coverage_min_ratio of the window (or of
    its market-open time) fails, saying for how long the evidence is missing: a value judged on
    part of the window has not been shown to hold for the rest.
    """
    series = [SeriesValue(labels, value, gate.satisfied_by(value)) for labels, value in result]
    reasons: list[str] = []
    if not series:
        status: Status = gate.no_data
        reasons.append(f"no data: {gate.no_data_means or 'no series'} (no_data: {gate.no_data})")
    else:
        failing = [s for s in series if not s.passed]
        status = "fail" if failing else "pass"
        reasons += [
            f"{_describe(s.labels)} = {format_value(s.value, gate.unit)} (needs {gate.threshold_text})"
            for s in failing
        ]
    minimum = THRESHOLDS["coverage_min_ratio"].value
    if coverage is not None and coverage.share is not None and coverage.share < minimum:
        status = "fail"
        part = "market-open time" if coverage.during == "market_open" else "window"
        reasons.append(
            f"evidence ({coverage.evidence}) missing for {format_value(1 - coverage.share, 'ratio')} of the "
            f"{part} (about {duration_text(round(coverage.seconds_missing))})"
        )
    reason = "; ".join(reasons) if status == "fail" or not series else ""
    if status == "fail" and gate.fail_hint:
        reason = f"{reason}: {gate.fail_hint}"
    judged = _result(gate, window_seconds, status, series, reason)
    judged.coverage = coverage
    return judged


def judge_window(window_seconds: float, required_seconds: float) -> GateResult:
    """The extra gate: a session shorter than session.required_duration cannot pass."""
    ok = window_seconds >= required_seconds
    reason = (
        ""
        if ok
        else (
            f"window is {duration_text(round(window_seconds))}, "
            f"shorter than session.required_duration {duration_text(round(required_seconds))}"
        )
    )
    return GateResult(
        WINDOW_GATE_ID,
        f"Session at least {duration_text(round(required_seconds))} long",
        "pass" if ok else "fail",
        True,
        f">= {duration_text(round(required_seconds))}",
        "",
        [SeriesValue({}, window_seconds, ok)],
        reason,
        unit="s",
        measures="length of the judged window",
        no_data_means="(always measured)",
    )


def error_result(gate: Gate, window_seconds: float, message: str) -> GateResult:
    """A gate whose query failed: it fails, with the Prometheus error as the reason."""
    return _result(gate, window_seconds, "fail", [], f"query failed: {message}")


def overall_pass(results: list[GateResult]) -> bool:
    """The session passes only if no critical gate failed."""
    return all(r.passed for r in results if r.critical)


def counter_increments(points: list[tuple[float, float]], start: float, grace: float) -> float:
    """Exact increments of a counter in (start, end]: resets-aware differences of raw samples.

    The baseline is the last sample at or before ``start``; without one, the first sample if it
    lies within ``grace`` of the start (the recording began with the window), else 0 (the series
    was created in the window: a counter starts at 0).
    """
    before = [v for t, v in points if t <= start]
    inside = [v for t, v in points if t > start]
    if before:
        previous = before[-1]
    elif inside and points[0][0] - start <= grace:
        previous, inside = inside[0], inside[1:]
    else:
        previous = 0.0
    total = 0.0
    for value in inside:
        total += value - previous if value >= previous else value
        previous = value
    return total


def _describe(labels: dict[str, str]) -> str:
    shown = {k: v for k, v in labels.items() if k != "__name__"}
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(shown.items())) + "}" if shown else "value"
