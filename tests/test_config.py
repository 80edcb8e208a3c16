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
