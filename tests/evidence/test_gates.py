"""Gate judgement and window handling, without Prometheus (the rules the verdict applies)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from gatewatch.config import ConfigError
from gatewatch.evidence.cli import resolve_window
from gatewatch.evidence.gates import Gate, judge, judge_window, load_gates, overall_pass

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
        ("gates:\n  - {id: a, title: A, expr: up, pass_if: 'about 5'}\n", "gates[0].pass_if"),
        ("gates:\n  - {id: a, title: A, pass_if: '< 1'}\n", "gates[0].expr"),
        ("gates:\n  - {id: a, title: A, expr: up, pass_if: '< 1', no_data: maybe}\n", "gates[0].no_data"),
        ("gates: []\n", "gates"),
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


def test_fail_hint_from_gates_yml(tmp_path: Path) -> None:
    path = tmp_path / "gates.yml"
    path.write_text("gates:\n  - {id: a, title: A, expr: up, pass_if: '>= 1', fail_hint: 'no\n      scrape'}\n")
    assert load_gates(path)[0].fail_hint == "no scrape"
    path.write_text("gates:\n  - {id: a, title: A, expr: up, pass_if: '>= 1', fail_hint: [x]}\n")
    with pytest.raises(ConfigError, match=r"gates\[0\]\.fail_hint"):
        load_gates(path)
    assert next(g for g in load_gates() if g.id == "data_coverage").fail_hint
