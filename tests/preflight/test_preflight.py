"""``gatewatch preflight`` against the simulator over real TCP, through unmodified ib_async.

The market-open item is made non-blocking in the config (tests run at any hour); host CPU and
memory limits are relaxed because the test machine is shared. Every other item is the real check.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from gatewatch.ib.clock import ClockEstimator, TimeSample
from gatewatch.localstack.net import free_port
from simulator import running_simulator

ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, port: int, **overrides: object) -> Path:
    config = {
        "gateway": {
            "host": "127.0.0.1",
            "port": port,
            "paper_ports": [port],
            "connect_timeout": "5s",
            "request_timeout": "5s",
        },
        "active": {
            "journal_path": str(tmp_path / "journal.sqlite"),
            "instrument": {"kind": "option", "symbol": "SPY"},
        },
        "preflight": {
            "require_market_open": False,
            "max_host_cpu_ratio": 1.0,
            "max_host_memory_ratio": 1.0,
            "min_disk_free_bytes": 1,
            "prometheus_data_path": str(tmp_path),
            "max_clock_skew": 1.5,
            "min_net_liquidation": 100000,
        },
    }
    for section, values in overrides.items():
        config.setdefault(section, {}).update(values)  # type: ignore[attr-defined]
    path = tmp_path / "gatewatch.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def run_preflight(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gatewatch", "preflight", "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )


def line_of(output: str, name: str) -> str:
    lines = [line for line in output.splitlines() if name in line and line.startswith("[")]
    assert lines, f"no line for {name!r} in:\n{output}"
    return lines[0]


@pytest.fixture
def paper_sim() -> Iterator[object]:
    with running_simulator(account="DU1234567", seed=1, symbols=["SPY", "QQQ"], market="open") as sim:
        yield sim


def test_preflight_passes_against_paper_simulator(tmp_path: Path, paper_sim: object) -> None:
    result = run_preflight(write_config(tmp_path, paper_sim.port))  # type: ignore[attr-defined]
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    for name in (
        "configuration valid",
        "Gateway port reachable",
        "API handshake",
        "account is paper",
        "port is a paper port",
        "net liquidation",
        "no probe leftovers",
        "clock skew against IB server time",
        "probe instrument",
    ):
        assert line_of(out, name).startswith("[PASS]"), line_of(out, name)
    assert "DU1234567" in line_of(out, "account is paper")
    assert "client id 911" in line_of(out, "API handshake")  # exporter's 901 + 10
    assert "nearest expiry" in line_of(out, "probe instrument")
    assert line_of(out, "market open").startswith(("[PASS]", "[WARN]"))
    assert "preflight passed" in out


def test_live_looking_account_is_a_blocking_failure(tmp_path: Path) -> None:
    with running_simulator(account="U1234567", seed=1, symbols=["SPY"], market="open") as sim:
        result = run_preflight(write_config(tmp_path, sim.port))
    line = line_of(result.stdout, "account is paper")
    assert result.returncode == 1, result.stdout
    assert line.startswith("[FAIL]") and "U1234567" in line and "LIVE" in line
    assert "FIX: log IB Gateway into the PAPER" in result.stdout
    assert "preflight FAILED" in result.stdout


def test_non_paper_port_is_a_blocking_failure(tmp_path: Path, paper_sim: object) -> None:
    config = write_config(tmp_path, paper_sim.port, gateway={"paper_ports": [4002, 7497]})  # type: ignore[attr-defined]
    result = run_preflight(config)
    assert result.returncode == 1
    assert line_of(result.stdout, "port is a paper port").startswith("[FAIL]")
    assert "4001 and 7496" in result.stdout


def test_gateway_absent_fails_with_fix(tmp_path: Path) -> None:
    port = free_port()
    result = run_preflight(write_config(tmp_path, port))
    assert result.returncode == 1
    line = line_of(result.stdout, "Gateway port reachable")
    assert line.startswith("[FAIL]") and str(port) in line
    assert "FIX: start IB Gateway" in result.stdout
    assert line_of(result.stdout, "API handshake").startswith("[FAIL]")
    # host checks still ran
    assert line_of(result.stdout, "disk space for Prometheus").startswith("[PASS]")


def test_bad_config_exits_2_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("preflight:\n  min_net_liquidaton: 5\n", encoding="utf-8")
    result = run_preflight(path)
    assert result.returncode == 2
    assert "preflight.min_net_liquidaton" in result.stderr


def test_probe_leftover_order_is_reported(tmp_path: Path, paper_sim: object) -> None:
    """A resting order tagged with the probe prefix (placed here through a separate client) is a leftover."""
    from ib_async import IB, LimitOrder, Stock

    ib = IB()
    ib.connect("127.0.0.1", paper_sim.port, clientId=55, timeout=10)  # type: ignore[attr-defined]
    try:
        contract = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))[0]
        order = LimitOrder("BUY", 1, 1.00, orderRef="gatewatch-test-leftover", account="DU1234567")
        ib.placeOrder(contract, order)
        ib.sleep(1.0)
        result = run_preflight(write_config(tmp_path, paper_sim.port))  # type: ignore[attr-defined]
    finally:
        ib.disconnect()
    assert result.returncode == 1, result.stdout
    assert "gatewatch-test-leftover" in line_of(result.stdout, "no probe leftovers")
    assert "gatewatch flatten" in result.stdout


def test_skew_interval_intersects_one_second_samples() -> None:
    # host 0.3 s ahead; IB seconds truncate; samples land at different fractions of a second
    samples = [TimeSample(sent, sent + 0.01, int(sent - 0.3)) for sent in (1000.05, 1001.30, 1002.55, 1003.80)]
    bound = ClockEstimator.of(samples)
    assert bound.lo <= 0.3 <= bound.hi
    assert bound.hi - bound.lo < 0.35
    assert bound.samples == 4
    assert not ClockEstimator.of([]).known


def test_a_clock_step_during_preflight_judges_the_clocks_as_they_are_now() -> None:
    """The exporter's rule won: after a contradiction the newest sample alone counts, not the union."""
    before = [TimeSample(t, t + 0.01, int(t - 0.3)) for t in (1000.05, 1001.30)]
    after = [TimeSample(t, t + 0.01, int(t - 5.3)) for t in (1002.55, 1003.80)]  # host clock stepped 5 s
    bound = ClockEstimator.of(before + after)
    assert bound.resets == 1
    assert bound.lo <= 5.3 <= bound.hi and bound.best > 4  # not a union reaching back to 0.3


def test_preflight_measures_a_gateway_clock_off_by_seconds(tmp_path: Path, paper_sim: object) -> None:
    """IB time 2.7 s ahead of the host: the interval (same requester and estimator as the exporter's
    clock probe) excludes the ±1.5 s limit, so the item fails and shows the measured interval."""
    paper_sim.inject({"fault": "clock_shift", "ms": 2700})  # type: ignore[attr-defined]
    result = run_preflight(write_config(tmp_path, paper_sim.port))  # type: ignore[attr-defined]
    line = line_of(result.stdout, "clock skew against IB server time")
    assert line.startswith("[FAIL]"), line
    low, high = (float(x) for x in re.findall(r"([+-]\d+\.\d+) s", line)[:2])
    assert low <= -2.7 <= high and high - low < 1.0, line
