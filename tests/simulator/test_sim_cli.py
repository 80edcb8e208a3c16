"""``gatewatch sim`` inputs: symbols and master client id from the gatewatch config, and bad input
refused with exit status 2 and a message naming it, before anything listens."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gatewatch import stack
from simulator import cli
from simulator.scenario import ScenarioError

ROOT = Path(__file__).resolve().parents[2]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(list(argv))


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "gatewatch.yaml"
    path.write_text("gateway: {client_id: 777, probe_client_id: 778, account: DU7654321}\n"
                    "probes: {symbols: [SPY, AAPL], historical: {symbol: SPY}}\n", encoding="utf-8")
    return path


def sim(*argv: str) -> subprocess.CompletedProcess[str]:
    """The real command; every case here must fail before binding, so a short timeout is plenty."""
    return subprocess.run([sys.executable, "-m", "gatewatch", "sim", "--port", "0", "--control-port", "-1",
                           *argv], capture_output=True, text=True, timeout=30, cwd=ROOT)


def test_defaults_without_config() -> None:
    cfg = cli.config_from_args(parse())
    assert cfg.symbols == ["SPY", "QQQ", "IWM"]
    assert cfg.account == "DU1234567"
    assert cfg.master_client_id == 901  # the exporter's default client id


def test_config_supplies_symbols_master_and_account(tmp_path: Path) -> None:
    cfg = cli.config_from_args(parse("--config", str(write_config(tmp_path))))
    assert cfg.symbols == ["SPY", "AAPL"]
    assert cfg.master_client_id == 777
    assert cfg.account == "DU7654321"


def test_explicit_options_win_over_the_config(tmp_path: Path) -> None:
    args = parse("--config", str(write_config(tmp_path)), "--symbols", "QQQ", "--account", "DU1111111",
                 "--master-client-id", "none")
    cfg = cli.config_from_args(args)
    assert (cfg.symbols, cfg.account, cfg.master_client_id) == (["QQQ"], "DU1111111", None)
    assert cli.config_from_args(parse("--master-client-id", "-1")).master_client_id is None
    assert cli.config_from_args(parse("--master-client-id", "0")).master_client_id == 0


def test_the_repository_config_is_served() -> None:
    served = cli.config_from_args(parse("--config", str(ROOT / "config" / "gatewatch.yaml")))
    expected = yaml.safe_load((ROOT / "config" / "gatewatch.yaml").read_text(encoding="utf-8"))
    assert served.symbols == expected["probes"]["symbols"]
    assert served.master_client_id == expected["gateway"]["client_id"]


def test_native_stack_passes_its_config_to_the_simulator(tmp_path: Path) -> None:
    config_path = write_config(tmp_path)
    parser = argparse.ArgumentParser()
    stack.add_arguments(parser)
    args = parser.parse_args(["--no-prometheus", "--data-dir", str(tmp_path / "data")])
    config = stack.load_config(config_path)
    plan = stack.plan_stack(args, config, config_path, {})
    argv = next(p.argv for p in plan.processes if p.name == "simulator")
    assert argv[argv.index("sim") + 1:][-2:] == ["--config", str(config_path)]
    cfg = cli.config_from_args(parse(*argv[argv.index("sim") + 1:]))
    assert cfg.symbols == ["SPY", "AAPL"] and cfg.master_client_id == 777


def test_missing_scenario_file_exits_2_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-scenario.yaml"
    done = sim("--scenario", str(missing))
    assert done.returncode == 2
    assert str(missing) in done.stderr and "No such file" in done.stderr


def test_bad_scenario_entry_exits_2_naming_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "chaos.yaml"
    path.write_text("- {at: 5s, fault: drop}\n- {at: 1m, fault: freeze, symbol: NOPE}\n", encoding="utf-8")
    done = sim("--scenario", str(path))
    assert done.returncode == 2
    assert f"{path}: item 2 ({{at: 1m, fault: freeze, symbol: NOPE}})" in done.stderr
    assert "needs 'symbol'" in done.stderr


def test_scenario_entries_are_named_in_every_error(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    for text, expected in [("- {fault: drop}\n", "item 1 ({fault: drop}) needs an 'at' time"),
                           ("- {at: soon, fault: drop}\n", "item 1 ({at: soon, fault: drop}): 'at': invalid duration"),
                           ("- [unclosed\n", "not valid YAML")]:
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ScenarioError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            cli.config_from_args(parse("--scenario", str(path)))


@pytest.mark.parametrize("account", ["", "   ", "DU 1234567", "DU1234567,DU7654321", "du1234567", "DU"])
def test_empty_or_invalid_account_is_rejected(account: str) -> None:
    with pytest.raises(ValueError, match="--account: must be an IB account id"):
        cli.config_from_args(parse("--account", account))


def test_empty_account_exits_2() -> None:
    done = sim("--account", "")
    assert done.returncode == 2
    assert "--account: must be an IB account id like DU1234567" in done.stderr


def test_unreadable_config_exits_2_naming_it(tmp_path: Path) -> None:
    done = sim("--config", str(tmp_path / "absent.yaml"))
    assert done.returncode == 2
    assert f"--config: {tmp_path / 'absent.yaml'}" in done.stderr


def test_bad_master_client_id_is_refused_by_the_parser() -> None:
    done = sim("--master-client-id", "-7")
    assert done.returncode == 2 and "--master-client-id" in done.stderr


@pytest.mark.parametrize("entry", ["{at: 1s, fault: stall, for: .nan}", "{at: 1e999, fault: drop}",
                                   "{at: 1s, fault: pacing, count: 99999999}"])
def test_scenario_with_non_finite_or_unbounded_numbers_exits_2(tmp_path: Path, entry: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"- {entry}\n")
    done = sim("--scenario", str(path))
    assert done.returncode == 2 and "item 1" in done.stderr
