"""One safe YAML loader for every file gatewatch reads: config (tests/test_config.py), scenarios, gates."""

from __future__ import annotations

from pathlib import Path

import pytest

from gatewatch.config import ConfigError
from gatewatch.evidence.gates import load_gates
from gatewatch.safe_yaml import MAX_DEPTH, YamlFileError, load_file, loads
from simulator.scenario import ScenarioError, load_scenario

BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n" for p, n in zip("abcdef", "bcdefg", strict=True)
)


def test_plain_yaml_loads_as_safe_load_does() -> None:
    assert loads("a: 1\nb: [x, {c: true}]\nd: null\n") == {"a": 1, "b": ["x", {"c": True}], "d": None}
    assert loads("") is None


def test_depth_limit_is_exact() -> None:
    assert loads("[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)) is not None
    with pytest.raises(YamlFileError, match=f"nested more than {MAX_DEPTH} levels"):
        loads("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))


def test_alias_bomb_is_refused_before_it_is_built() -> None:
    with pytest.raises(YamlFileError, match="alias bomb"):
        loads(BOMB)
    assert loads("a: &a [1, 2]\nb: [*a, *a]\n") == {"a": [1, 2], "b": [[1, 2], [1, 2]]}  # ordinary aliases


def test_a_byte_order_mark_is_fine_other_encodings_are_named(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_bytes(b"\xef\xbb\xbfa: 1\n")
    assert load_file(path) == {"a": 1}
    path.write_bytes("a: 1\nb: ü\n".encode("latin-1"))
    with pytest.raises(YamlFileError, match=r"x.yaml: not UTF-8 text: byte 0xfc at offset 8 \(line 2\)"):
        load_file(path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("- {at: 10s, fault: stall, for: 5s}\n- {at: 20s, at: 5s, fault: refuse}\n", "duplicate key 'at' at line 2"),
        ("- {at: 1s, fault: stall, for: *a}\n", "not valid YAML"),
        ("- " * 100 + "x\n", "nested more than"),
    ],
)
def test_scenario_files_use_the_safe_loader(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError, match=problem) as info:
        load_scenario(path, ["SPY"])
    assert str(path) in str(info.value)


def test_scenario_alias_bomb_in_a_duration_field(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text("- &item {at: 1s, fault: stall, for: 5s}\n- {at: 2s, fault: stall, for: 5s}\n", encoding="utf-8")
    assert len(load_scenario(path, ["SPY"])) == 2
    anchors = "".join(f"    {line}\n" for line in BOMB.splitlines())
    path.write_text(f"- at: 1s\n  fault: stall\n  defs:\n{anchors}  for: *g\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match="alias bomb"):
        load_scenario(path, ["SPY"])


def test_gates_file_uses_the_safe_loader(tmp_path: Path) -> None:
    path = tmp_path / "gates.yml"
    path.write_text("gates: []\ngates: [1]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="duplicate key 'gates' at line 2"):
        load_gates(path)


def test_proxy_scenarios_and_the_thresholds_table_use_the_safe_loader(tmp_path: Path) -> None:
    from gatewatch.thresholds import load_thresholds
    from proxy.faults import load_scenario as load_proxy_scenario

    path = tmp_path / "proxy.yaml"
    path.write_text("- {at: 1s, at: 2s, fault: stall}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="duplicate key 'at' at line 1"):
        load_proxy_scenario(path)
    path = tmp_path / "thresholds.yml"
    path.write_bytes(b"quote_stale_seconds: \xff\n")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_thresholds(path)


def test_a_hostile_scenario_exits_2_before_the_simulator_listens(tmp_path: Path) -> None:
    from gatewatch.cli import main

    path = tmp_path / "scenario.yaml"
    path.write_text("- {at: 1s, at: 2s, fault: stall}\n", encoding="utf-8")
    assert main(["sim", "--scenario", str(path)]) == 2
    path.write_bytes(b"- {at: 1s, fault: st\xe4ll}\n")
    assert main(["sim", "--scenario", str(path)]) == 2
