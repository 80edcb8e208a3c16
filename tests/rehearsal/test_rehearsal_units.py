"""The rehearsal's parts that need no running stack: scenarios, scaling, generated configs, options.

Generated Prometheus and Alertmanager configs are checked with the real promtool and amtool.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gatewatch.cli import main as gatewatch_main
from gatewatch.config import ConfigError, load_config
from gatewatch.localstack.process import REPO_ROOT
from gatewatch.rehearsal import configs
from gatewatch.rehearsal.checks import check_ledger
from gatewatch.rehearsal.timeline import (
    LEAD_IN_SECONDS,
    MIN_FAULT_SECONDS,
    fired_by,
    load_timeline,
    time_scale_for,
    write_timeline,
)
from gatewatch.rehearse import add_arguments, options_from_args
from simulator.scenario import load_scenario

SYMBOLS = ["SPY", "QQQ", "IWM"]
CHAOS = REPO_ROOT / "scenarios" / "chaos.yaml"
CALM = REPO_ROOT / "scenarios" / "calm.yaml"


def test_calm_scenario_has_no_fault() -> None:
    assert load_scenario(CALM, SYMBOLS) == []


def test_chaos_scenario_covers_every_required_fault_and_fits_ten_minutes() -> None:
    entries = load_scenario(CHAOS, SYMBOLS)
    names = {body["fault"] for _, body in entries}
    assert {"disconnect", "stall", "competing_session", "freeze", "drop_bid_ask", "pacing", "clock_shift",
            "reject_next_order", "partial_fill_next_order", "manual_trade"} <= names
    stall = next(body for _, body in entries if body["fault"] == "stall")
    assert stall["for"] == "30s"
    ends = [at + float(str(body.get("for", "0s")).rstrip("s")) for at, body in entries]
    assert max(ends) <= 600 * 5 / 6, "the last sixth of a rehearsal must stay quiet so alerts can resolve"


def test_scaling_multiplies_at_and_for_with_a_floor_and_a_lead_in() -> None:
    scale = time_scale_for(120.0)
    assert scale == pytest.approx(0.2)
    timeline = load_timeline(CHAOS, SYMBOLS, scale)
    stall = next(f for f in timeline if f.name == "stall")
    assert stall.at == pytest.approx(LEAD_IN_SECONDS + 160 * 0.2)
    assert stall.lasts == MIN_FAULT_SECONDS  # 30 s * 0.2 = 6 s, raised to the floor
    hist = next(f for f in timeline if f.name == "historical_pacing")
    assert hist.lasts == pytest.approx(110 * 0.2)
    assert [f.name for f in fired_by(timeline, LEAD_IN_SECONDS + 31 * 0.2)] == ["disconnect"]


def test_explicit_time_scale_wins_and_must_be_positive() -> None:
    assert time_scale_for(120.0, 1.0) == 1.0
    with pytest.raises(ConfigError, match="--time-scale"):
        time_scale_for(120.0, 0.0)


def test_scaled_timeline_is_a_valid_simulator_scenario(tmp_path: Path) -> None:
    timeline = load_timeline(CHAOS, SYMBOLS, 0.2)
    path = write_timeline(timeline, tmp_path / "scaled.yaml")
    replayed = load_scenario(path, SYMBOLS)
    assert [at for at, _ in replayed] == sorted(f.at for f in timeline)


def _ports() -> configs.Ports:
    return configs.Ports(14100, 14101, 14102, 14103, 14104, 14105)


def test_generated_gatewatch_config_targets_the_simulator_and_loads(tmp_path: Path) -> None:
    config = configs.gatewatch_config(REPO_ROOT / "config" / "gatewatch.yaml", _ports(), 120.0, tmp_path,
                                      SYMBOLS, "DU1234567")
    path = configs.write_gatewatch_config(config, tmp_path / "gatewatch.yaml")
    loaded = load_config(path)
    assert loaded.gateway.port == 14100 and loaded.gateway.paper_ports == [14100]
    assert loaded.active.enabled and not loaded.active.market_hours_only
    assert loaded.active.interval == configs.active_interval_for(120.0) == 15.0
    assert loaded.session.required_duration == 120.0
    assert Path(loaded.active.journal_path).parent == tmp_path


@pytest.mark.skipif(not shutil.which("promtool"), reason="needs promtool")
def test_generated_prometheus_config_and_scaled_rules_pass_promtool(tmp_path: Path) -> None:
    path = configs.write_prometheus_config(_ports(), 0.2, 120.0, tmp_path)
    done = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    rules = yaml.safe_load((tmp_path / "prometheus" / "rules" / "alerts.yml").read_text())
    fors = {r["alert"]: r.get("for") for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert fors["GatewayDown"] == "2s"  # 10 s * 0.2
    assert fors["ClockSkewHigh"] == "12s"  # 1 m * 0.2


@pytest.mark.skipif(not shutil.which("amtool"), reason="needs amtool")
def test_generated_alertmanager_config_passes_amtool(tmp_path: Path) -> None:
    path = configs.write_alertmanager_config(_ports(), 0.1, 120.0, tmp_path)
    done = subprocess.run(["amtool", "check-config", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert yaml.safe_load(path.read_text())["global"]["smtp_smarthost"] == "127.0.0.1:14105"


ROUTE_TIMINGS = ("group_wait", "group_interval", "repeat_interval")


def _shipped_alertmanager_config(tmp_path: Path) -> dict[str, Any]:
    """alertmanager/render.sh as the compose service runs it, with an operator's SMTP settings."""
    env = {"PATH": os.environ["PATH"], "GATEWATCH_SMTP_SMARTHOST": "smtp.example.org:587",
           "GATEWATCH_ALERT_EMAIL_FROM": "gatewatch@example.org", "GATEWATCH_ALERT_EMAIL_TO": "op@example.org"}
    out = tmp_path / "shipped.yml"
    subprocess.run(["sh", str(REPO_ROOT / "alertmanager" / "render.sh"), str(out)], env=env, check=True,
                   capture_output=True, timeout=10)
    return dict(yaml.safe_load(out.read_text()))


def _routes(route: dict[str, Any]) -> list[dict[str, Any]]:
    return [route, *(r for child in route.get("routes", []) for r in _routes(child))]


def _without(data: Any, keys: tuple[str, ...]) -> Any:
    if isinstance(data, dict):
        return {k: _without(v, keys) for k, v in data.items() if k not in keys}
    if isinstance(data, list):
        return [_without(v, keys) for v in data]
    return data


def test_rehearsal_and_test_alertmanager_configs_keep_the_shipped_routes_and_inhibitions(tmp_path: Path) -> None:
    """The rehearsal's and the tests' Alertmanager run the shipped routes, grouping, inhibit rules,
    receivers and e-mail templates; only the SMTP server, the recipient and shorter timings differ."""
    from support import promstack

    from gatewatch.config import parse_duration

    shipped = _shipped_alertmanager_config(tmp_path)
    assert shipped["inhibit_rules"] and shipped["route"]["routes"], "the shipped config has routes and inhibitions"
    rehearsal = yaml.safe_load(configs.write_alertmanager_config(_ports(), 0.1, 120.0, tmp_path / "r").read_text())
    tests = yaml.safe_load(promstack.render_alertmanager_config(tmp_path / "t", smtp_port=2525).read_text())
    for name, overlay in (("rehearsal", rehearsal), ("tests", tests)):
        assert overlay["inhibit_rules"] == shipped["inhibit_rules"], name
        assert overlay["templates"] == shipped["templates"], name
        assert _without(overlay["route"], ROUTE_TIMINGS) == _without(shipped["route"], ROUTE_TIMINGS), name
        assert _without(overlay["receivers"], ("to",)) == _without(shipped["receivers"], ("to",)), name
        for mine, theirs in zip(_routes(overlay["route"]), _routes(shipped["route"]), strict=True):
            for key in ROUTE_TIMINGS:
                if key in theirs:
                    assert parse_duration(mine[key]) <= parse_duration(theirs[key]), (name, key)
        assert overlay["global"]["smtp_smarthost"].startswith("127.0.0.1:"), "never the operator's server"


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


@pytest.mark.parametrize(("argv", "field"), [
    (["--duration", "soon"], "--duration"),
    (["--duration", "5s"], "--duration"),
    (["--scenario", "/nonexistent.yaml"], "--scenario"),
    (["--config", "/nonexistent.yaml"], "--config"),
])
def test_bad_options_name_the_option(argv: list[str], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        options_from_args(_args(*argv))


def test_bad_duration_exits_2_naming_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert gatewatch_main(["rehearse", "--duration", "soon"]) == 2
    assert "--duration" in capsys.readouterr().err


def test_ledger_check_finds_leftovers_duplicates_and_unjournalled_orders(tmp_path: Path) -> None:
    def order(ref: str, status: str, order_id: int) -> dict[str, object]:
        return {"orderId": order_id, "orderRef": ref, "status": status, "whatIf": False}

    state = {
        "orders": [order("gatewatch:fill:r.1", "Filled", 1), order("gatewatch:fill:r.1", "Filled", 2),
                   order("gatewatch:cancel:r.2", "Submitted", 3), order("manual", "Submitted", 4)],
        "executions": [{"orderRef": "gatewatch:fill:r.1", "symbol": "SPY", "secType": "STK", "side": "BOT",
                        "shares": 1.0},
                       {"orderRef": None, "symbol": "SPY", "secType": "STK", "side": "BOT", "shares": 3.0}],
    }
    ledger = check_ledger(state, "gatewatch", tmp_path / "missing.sqlite")
    assert ledger.duplicate_refs == ["gatewatch:fill:r.1"]
    assert [o["orderRef"] for o in ledger.open_probe_orders] == ["gatewatch:cancel:r.2"]
    assert ledger.probe_positions == {"SPY STK": 1.0}  # the manual 3 shares are not the probes'
    assert set(ledger.unjournalled_refs) == {"gatewatch:fill:r.1", "gatewatch:cancel:r.2"}
    assert len(ledger.problems) == 4


@pytest.mark.parametrize("make", ["missing", "not-a-tsdb"])
def test_evidence_from_a_folder_that_is_no_prometheus_data_exits_2_naming_it(tmp_path: Path, make: str) -> None:
    folder = tmp_path / "data"
    if make == "not-a-tsdb":
        folder.mkdir()
        (folder / "notes.txt").write_text("hello", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "gatewatch", "evidence", "--prometheus-data", str(folder),
                           "--last", "1h", "--out", str(tmp_path / "out")], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "--prometheus-data" in done.stderr and str(folder) in done.stderr
    assert not (tmp_path / "out").exists()
