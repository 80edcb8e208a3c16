"""Gate judgement and window handling, without Prometheus (the rules the verdict applies)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from gatewatch.config import ConfigError
from gatewatch.evidence.cli import resolve_window
from gatewatch.evidence.gates import (
    Coverage,
    Gate,
    counter_increments,
    format_value,
    judge,
    judge_window,
    load_gates,
    overall_pass,
    session_gates,
)

GATE_HEAD = "gates:\n  - {id: a, title: A, measures: m, no_data_means: n, "
FRESH = Gate("quotes_fresh", "Quotes fresh", "max_over_time(x[$__range])", "<=", 5.0, "pass", True)


def test_project_gates_load_and_substitute_range() -> None:
    gates = load_gates()
    assert {"gateway_connected", "quotes_fresh", "clock_in_sync", "memory_bounded"} <= {g.id for g in gates}
    assert all("$__range" not in g.expr_for(7200) for g in gates)
    assert "[7200s]" in next(g for g in gates if g.id == "gateway_connected").expr_for(7200.4)


def test_every_series_must_pass() -> None:
    result = judge(FRESH, 60, [({"symbol": "SPY"}, 1.2), ({"symbol": "QQQ"}, 7.5)])
    assert result.status == "fail"
    assert 'symbol="QQQ"' in result.reason and "7.5" in result.reason
    assert judge(FRESH, 60, [({"symbol": "SPY"}, 5.0)]).status == "pass"


def test_no_data_and_nan() -> None:
    assert judge(FRESH, 60, []).status == "pass"
    strict = Gate("g", "g", "e", ">=", 1, "fail", True)
    assert judge(strict, 60, []).status == "fail"
    assert judge(strict, 60, [({}, math.nan)]).status == "fail"


def test_window_gate_and_overall() -> None:
    short = judge_window(3600, 7200)
    assert short.status == "fail" and "1h" in short.reason and "2h" in short.reason
    assert judge_window(7200, 7200).status == "pass"
    non_critical_fail = judge(Gate("n", "n", "e", "<", 0, "fail", False), 60, [])
    assert overall_pass([judge_window(7200, 7200), non_critical_fail])
    assert not overall_pass([short])


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (GATE_HEAD + "expr: up, pass_if: 'about 5'}\n", "gates[0].pass_if"),
        (GATE_HEAD + "pass_if: '< 1'}\n", "gates[0].expr"),
        (GATE_HEAD + "expr: up, pass_if: '< 1', no_data: maybe}\n", "gates[0].no_data"),
        ("gates: []\n", "gates"),
        ("gates:\n  - {id: a, title: A, expr: up, pass_if: '< 1', measures: m}\n", "gates[0].no_data_means"),
        ("gates:\n  - {id: a, title: A, expr: up, pass_if: '< 1', no_data_means: n}\n", "gates[0].measures"),
        ("gates:\n  - {id: a, title: A, expr: up, pass_if: '< 1', measures: m, no_data_means: n, unit: MB}\n",
         "gates[0].unit"),
        ("gates:\n  - {id: a, title: A, expr: up, pass_if: '< 1', measures: m, no_data_means: n, risk_limit: x}\n",
         "gates[0].risk_limit"),
    ],
)
def test_malformed_gates_name_the_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "gates.yml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=field.replace("[", r"\[").replace("]", r"\]")):
        load_gates(path)


def test_window_resolution() -> None:
    now = 1_800_000_000.0
    window = resolve_window(None, None, "2h", now)
    assert (window.start, window.end) == (now - 7200, now)
    window = resolve_window("2026-03-02T14:30:00Z", "2026-03-02T16:30:00+00:00", None, now)
    assert window.seconds == 7200
    with pytest.raises(ConfigError, match="--from"):
        resolve_window("2026-03-02T16:30:00", "2026-03-02T14:30:00", None, now)
    with pytest.raises(ConfigError, match="--last"):
        resolve_window("1", None, "2h", now)
    with pytest.raises(ConfigError, match="--to"):
        resolve_window(None, str(now + 3600), "1h", now)


def test_fail_hint_explains_a_failure_only() -> None:
    gate = Gate("cover", "Covered", "e", ">=", 0.99, "fail", True, "the window starts before the data")
    failed = judge(gate, 60, [({}, 0.25)])
    assert failed.reason == "value = 0.25 (needs >= 0.99): the window starts before the data"
    assert judge(gate, 60, [({}, 1.0)]).reason == ""
    assert "the window starts before the data" in judge(gate, 60, []).reason
    gate = Gate("cover", "Covered", "e", ">=", 0.99, "fail", True, "starts early", unit="ratio")
    assert judge(gate, 60, [({}, 0.25)]).reason == "value = 25% (needs >= 99%): starts early"


def test_fail_hint_from_gates_yml(tmp_path: Path) -> None:
    path = tmp_path / "gates.yml"
    path.write_text(GATE_HEAD + "expr: up, pass_if: '>= 1', fail_hint: 'no\n      scrape'}\n")
    assert load_gates(path)[0].fail_hint == "no scrape"
    path.write_text(GATE_HEAD + "expr: up, pass_if: '>= 1', fail_hint: [x]}\n")
    with pytest.raises(ConfigError, match=r"gates\[0\]\.fail_hint"):
        load_gates(path)
    assert next(g for g in load_gates() if g.id == "data_coverage").fail_hint


def test_every_gate_says_what_no_data_means() -> None:
    for gate in load_gates():
        assert gate.no_data_means and gate.measures, gate.id
        result = judge(gate, 7200, [])
        assert result.status == gate.no_data
        assert gate.no_data_means in result.reason, gate.id


def test_missing_evidence_for_part_of_the_window_fails_and_says_so() -> None:
    """A value judged on half the market-open time has not been shown for the other half."""
    gate = next(g for g in load_gates() if g.id == "quotes_fresh")
    half = Coverage(0.5, 3600, "market_open", gate.evidence)
    result = judge(gate, 7200, [({"symbol": "SPY"}, 1.0)], half)
    assert result.status == "fail"
    assert "missing for 50% of the market-open time (about 1h)" in result.reason
    whole = Coverage(1.0, 0, "market_open", gate.evidence)
    assert judge(gate, 7200, [({"symbol": "SPY"}, 1.0)], whole).status == "pass"
    assert result.to_json()["coverage"]["share"] == 0.5


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([(90, 3), (100, 3), (110, 4), (120, 4), (130, 6)], 3),  # baseline before the window
        ([(110, 2), (120, 0), (130, 1)], 1),  # reset: 2 -> 0 -> 1 counts the 1 after the reset
        ([(90, 5), (110, 7), (120, 1), (130, 2)], 4),  # 5->7 (+2), reset to 1 (+1), ->2 (+1)
        ([(105, 4), (120, 5)], 1),  # recording began with the window: first sample is the baseline
        ([(500, 2), (600, 3)], 3),  # series created mid-window: counted from 0
        ([], 0),
    ],
)
def test_counter_increments_are_exact_integers(points: list[tuple[float, float]], expected: float) -> None:
    assert counter_increments(points, start=100, grace=10) == expected


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [(524288000, "bytes", "500 MiB"), (600e6, "bytes", "572.2 MiB"), (3600, "s", "1h"), (0.74, "s", "0.74 s"),
     (0.31, "ratio", "31%"), (3, "count", "3"), (1, "state", "1")],
)
def test_values_in_human_units(value: float, unit: str, text: str) -> None:
    assert format_value(value, unit) == text


def test_required_duration_comes_from_the_configuration() -> None:
    from gatewatch.config import GatewatchConfig

    config = GatewatchConfig.model_validate({"session": {"required_duration": "20m"}})
    gate = next(g for g in session_gates(config) if g.id == "market_open_covered")
    assert gate.threshold == 1200 and gate.title.endswith("20m")
