"""Configuration: defaults, the shipped example, and errors that name the field and the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gatewatch.config import ConfigError, load_config, parse_duration

REPO = Path(__file__).resolve().parents[1]


def test_shipped_example_is_valid_and_targets_the_simulator() -> None:
    config = load_config(REPO / "config" / "gatewatch.yaml", environ={})
    assert (config.gateway.host, config.gateway.port) == ("127.0.0.1", 4002)
    assert config.gateway.paper is True
    assert config.probes.symbols == ["SPY", "QQQ", "IWM"]
    assert config.active.max_quantity == 1


def test_environment_overrides_gateway_address(tmp_path: Path) -> None:
    config = load_config(None, environ={"GATEWATCH_GATEWAY": "10.1.2.3:4001"})
    assert (config.gateway.host, config.gateway.port) == ("10.1.2.3", 4001)
    with pytest.raises(ConfigError, match="GATEWATCH_GATEWAY"):
        load_config(None, environ={"GATEWATCH_GATEWAY": "nohost"})


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("gateway:\n  prot: 4002\n", "gateway.prot: unknown key"),
        ("gateway:\n  port: seventy\n", "gateway.port"),
        ("gateway:\n  port: 70000\n", "gateway.port"),
        ("gateway:\n  client_id: 5\n  probe_client_id: 5\n", "gateway"),
        ("probes:\n  symbols: [spy]\n", "probes.symbols.0"),
        ("probes:\n  historical:\n    interval: 5s\n", "probes.historical"),
        ("active:\n  max_quantity: 2\n", "active.max_quantity"),
        ("active:\n  interval: soon\n", "active.interval"),
        ("- just\n- a list\n", "top level must be a mapping"),
        ("gateway: [\n", "not valid YAML"),
    ],
)
def test_bad_config_names_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert str(path) in str(info.value)
    assert field in str(info.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml", environ={})


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("2m", 120), ("1h30m", 5400), ("250ms", 0.25), (3, 3), ("1.5", 1.5)]
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "5 minutes", True])
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_cli_exits_2_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("exporter:\n  log_levle: INFO\n")
    result = subprocess.run(
        [sys.executable, "-m", "gatewatch", "preflight", "--config", str(path)],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "exporter.log_levle" in result.stderr and str(path) in result.stderr


def test_cli_unknown_command_exits_2() -> None:
    result = subprocess.run([sys.executable, "-m", "gatewatch", "frobnicate"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "unknown command" in result.stderr


BILLION_LAUGHS = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join(['lol'] * 9)}]\n"
    for prev, name in zip(["", "a", "b", "c", "d", "e", "f", "g", "h"], "abcdefghi", strict=True)
)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"gateway:\n  paper: false\n  paper: true\n", "duplicate key 'paper' at line 3 (first at line 2)"),
        (b"gateway:\n  port: 4002\ngateway:\n  port: 4001\n", "duplicate key 'gateway' at line 3"),
        (b"probes:\n  symbols: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested more than 64 levels"),
        (b"gateway:\n  host: caf\xe9\n", "not UTF-8 text: byte 0xe9 at offset 20 (line 2)"),
        (BILLION_LAUGHS.encode() + b"active:\n  interval: *i\n", "alias bomb"),
        (b"active: &a\n  instrument: *a\n", "recursive alias"),
        (b"active:\n  max_notional: .inf\n", "active.max_notional"),
        (b"active:\n  interval: .nan\n", "active.interval"),
        (b"active:\n  interval: 1e999\n", "active.interval"),
    ],
    ids=["duplicate-paper", "duplicate-section", "deep", "non-utf8", "alias-bomb", "recursive-alias", "inf",
         "nan-duration", "huge-duration"],
)  # fmt: skip
def test_hostile_config_is_a_config_error_naming_the_problem(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert str(path) in str(info.value) and problem in str(info.value)


def test_merge_keys_may_still_override() -> None:
    """Overriding a merged mapping is YAML's intent, not a duplicate."""
    from gatewatch.safe_yaml import loads

    assert loads("base: &b {port: 4002, paper: true}\ngateway:\n  <<: *b\n  port: 7497\n")["gateway"] == {
        "port": 7497,
        "paper": True,
    }


def test_hostile_config_exits_2_from_every_command_that_reads_it(tmp_path: Path) -> None:
    from gatewatch.cli import main

    path = tmp_path / "dup.yaml"
    path.write_text("gateway:\n  paper: false\n  paper: true\n", encoding="utf-8")
    for args in (["preflight"], ["flatten"], ["probe", "run"], ["exporter"], ["sim"]):
        assert main([*args, "--config", str(path)]) == 2, args
