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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gatewatch import safe_yaml
from gatewatch.config import ConfigError
from gatewatch.thresholds import THRESHOLDS, Threshold, substitute

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

    @property
    def pass_if(self) -> str:
        return f"{self.op} {self.threshold:.10g}"

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
        }

    def expr_for(self, window_seconds: float) -> str:
        """The expression with ``$__range`` replaced by the window, in whole seconds (``7200s``)."""
        return self.expr.replace("$__range", f"{max(1, round(window_seconds))}s")

    def satisfied_by(self, value: float) -> bool:
        """NaN never passes: a gate that cannot be computed has not been shown to hold."""
        return not math.isnan(value) and _OPERATORS[self.op](value, self.threshold)


@dataclass
class SeriesValue:
    """One series an instant query returned: its labels and value."""

    labels: dict[str, str]
    value: float
    passed: bool


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

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "critical": self.critical,
            "threshold": self.threshold,
            "expr": self.expr,
            "values": [
                {"labels": s.labels, "value": _json_number(s.value), "pass": s.passed} for s in self.series
            ],
            "reason": self.reason,
        }


def _json_number(value: float) -> float | str:
    """JSON has no NaN/Inf; Prometheus writes them as strings, so do the same."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return value


def parse_gate(
    raw: Any, index: int, source: Path | str, thresholds: dict[str, Threshold] | None = None
) -> Gate:
    """Validate one entry of gates.yml, naming the entry and field on error.

    ``${name}`` references to the limits table are replaced first: by the number in ``expr`` and
    ``pass_if``, by the human form ("1.5 GiB") in ``title`` and ``fail_hint``.
    """
    where = f"{source}: gates[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping")
    for key in ("id", "title", "expr", "pass_if"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise ConfigError(f"{where}.{key}: required string")
    table = THRESHOLDS if thresholds is None else thresholds
    raw = dict(raw)
    for key in ("title", "expr", "pass_if", "fail_hint"):
        if isinstance(raw.get(key), str):
            raw[key] = substitute(raw[key], table, human_form=key in ("title", "fail_hint"), where=f"{where}.{key}")
    match = _PASS_IF_RE.match(raw["pass_if"])
    if not match:
        raise ConfigError(
            f"{where}.pass_if: expected an operator and a number, e.g. '<= 5', got {raw['pass_if']!r}"
        )
    no_data = raw.get("no_data", "fail")
    if no_data not in ("pass", "fail"):
        raise ConfigError(f"{where}.no_data: expected pass or fail, got {no_data!r}")
    critical = raw.get("critical", True)
    if not isinstance(critical, bool):
        raise ConfigError(f"{where}.critical: expected true or false")
    fail_hint = raw.get("fail_hint", "")
    if not isinstance(fail_hint, str):
        raise ConfigError(f"{where}.fail_hint: expected a string")
    return Gate(
        raw["id"],
        raw["title"],
        raw["expr"],
        match.group(1),
        float(match.group(2)),
        no_data,
        critical,
        " ".join(fail_hint.split()),
    )


def load_gates(path: Path | str = DEFAULT_GATES_PATH) -> list[Gate]:
    """Read gates.yml; a malformed file is a :class:`ConfigError` (exit status 2)."""
    source = Path(path)
    try:
        raw = safe_yaml.load_file(source)
    except safe_yaml.YamlFileError as exc:
        raise ConfigError(f"gates: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("gates"), list) or not raw["gates"]:
        raise ConfigError(f"{source}: gates: expected a non-empty list")
    gates = [parse_gate(item, i, source) for i, item in enumerate(raw["gates"])]
    ids = [g.id for g in gates]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ConfigError(f"{source}: gates: duplicate id(s) {', '.join(duplicates)}")
    return gates


def judge(gate: Gate, window_seconds: float, result: list[tuple[dict[str, str], float]]) -> GateResult:
    """Judge an instant-query result: every series must satisfy pass_if; none → the no_data rule."""
    series = [SeriesValue(labels, value, gate.satisfied_by(value)) for labels, value in result]
    if not series:
        status: Status = gate.no_data
        reason = f"no data (no_data: {gate.no_data})"
    else:
        failing = [s for s in series if not s.passed]
        status = "fail" if failing else "pass"
        reason = (
            ""
            if not failing
            else "; ".join(f"{_describe(s.labels)} = {s.value:g} (needs {gate.pass_if})" for s in failing)
        )
    if status == "fail" and gate.fail_hint:
        reason = f"{reason}: {gate.fail_hint}"
    return GateResult(
        gate.id,
        gate.title,
        status,
        gate.critical,
        gate.pass_if,
        gate.expr_for(window_seconds),
        series,
        reason,
    )


def judge_window(window_seconds: float, required_seconds: float) -> GateResult:
    """The extra gate: a session shorter than session.required_duration cannot pass."""
    ok = window_seconds >= required_seconds
    reason = (
        ""
        if ok
        else (
            f"window is {_human(window_seconds)}, "
            f"shorter than session.required_duration {_human(required_seconds)}"
        )
    )
    return GateResult(
        WINDOW_GATE_ID,
        f"Session at least {_human(required_seconds)} long",
        "pass" if ok else "fail",
        True,
        f">= {required_seconds:.10g}",
        "",
        [SeriesValue({}, window_seconds, ok)],
        reason,
    )


def error_result(gate: Gate, window_seconds: float, message: str) -> GateResult:
    """A gate whose query failed: it fails, with the Prometheus error as the reason."""
    return GateResult(
        gate.id,
        gate.title,
        "fail",
        gate.critical,
        gate.pass_if,
        gate.expr_for(window_seconds),
        [],
        f"query failed: {message}",
    )


def overall_pass(results: list[GateResult]) -> bool:
    """The session passes only if no critical gate failed."""
    return all(r.passed for r in results if r.critical)


def _describe(labels: dict[str, str]) -> str:
    shown = {k: v for k, v in labels.items() if k != "__name__"}
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(shown.items())) + "}" if shown else "value"


def _human(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts) or "0s"
