"""HTTP control API, scenario timelines and the command line entry point."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from support.sim import connect

from gatewatch.localstack.net import free_port
from simulator.scenario import load_scenario
from simulator.testing import SimHandle, running_simulator


def _http(port: int, method: str, path: str, body: object | None = None) -> tuple[int, dict]:  # type: ignore[type-arg]
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_control_api_roundtrip(sim: SimHandle) -> None:
    port = sim.control_port
    assert port
    assert _http(port, "GET", "/healthz")[0] == 200
    code, echo = _http(port, "POST", "/faults", {"fault": "freeze", "symbol": "SPY", "for": "30s"})
    assert code == 200 and echo["fault"] == "freeze" and echo["for"] == 30
    code, state = _http(port, "GET", "/state")
    assert code == 200
    for key in ("server_time", "clients", "orders", "executions", "positions", "account", "faults", "quotes"):
        assert key in state
    assert state["faults"][0]["fault"] == "freeze"
    assert state["quotes"]["SPY"]["bid"] < state["quotes"]["SPY"]["ask"]
    code, err = _http(port, "POST", "/faults", {"fault": "explode"})
    assert code == 400 and "unknown fault" in err["error"]
    assert _http(port, "POST", "/faults", None)[0] == 400
    assert _http(port, "DELETE", "/faults")[0] == 200
    assert _http(port, "GET", "/state")[1]["faults"] == []
    assert _http(port, "GET", "/nope")[0] == 404


async def test_scenario_timeline(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "- {at: 0.3s, fault: connectivity_lost, for: 0.3s}\n- {at: 0.2s, fault: farm_status, code: 2105}\n"
    )
    assert [at for at, _ in load_scenario(path, ["SPY"])] == [0.2, 0.3]
    with running_simulator(scenario=str(path), tick_hz=20) as sim:
        ib = await connect(sim, 1)
        codes: list[int] = []
        ib.errorEvent += lambda rid, code, msg, ct: codes.append(code)
        for _ in range(150):
            if 1102 in codes:
                break
            await asyncio.sleep(0.02)
        assert codes[:3] == [2105, 1100, 1102]
        ib.disconnect()


def test_bad_scenario_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("- {at: 1m, fault: freeze, symbol: NOPE}\n")
    with pytest.raises(ValueError, match="item 1"):
        load_scenario(path, ["SPY"])


def test_durations() -> None:
    from simulator.faults import parse_duration

    assert parse_duration("1h30m") == 5400
    assert parse_duration("2m") == 120
    assert parse_duration("500ms") == 0.5
    assert parse_duration(3) == 3
    with pytest.raises(ValueError):
        parse_duration("10x")


def test_python_m_simulator_starts_and_stops() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulator",
            "--port",
            str(port),
            "--control-port",
            "-1",
            "--symbols",
            "SPY,AAPL",
            "--seed",
            "3",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise AssertionError("simulator did not start")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "simulated IB Gateway listening on" in err


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"fault": "manual_trade", "symbol": "SPY", "qty": 1e999}', "qty"),
        ('{"fault": "manual_trade", "symbol": "SPY", "qty": NaN}', "qty"),
        ('{"fault": "manual_trade", "symbol": "SPY", "qty": 5, "price": Infinity}', "price"),
        ('{"fault": "manual_trade", "symbol": "SPY", "qty": 100000000}', "qty"),
        ('{"fault": "stall", "for": NaN}', "for"),
        ('{"fault": "stall", "for": "1e999"}', "for"),
        ('{"fault": "latency", "ms": 1e999}', "ms"),
        ('{"fault": "clock_shift", "ms": -1e300}', "ms"),
        ('{"fault": "pacing", "count": 1000000000}', "count"),
    ],
)
def test_control_api_refuses_non_finite_and_unbounded_numbers(sim: SimHandle, raw: str, field: str) -> None:
    """HTTP 400 naming the field; nothing is injected and the account stays clean."""
    port = sim.control_port
    assert port
    req = urllib.request.Request(f"http://127.0.0.1:{port}/faults", data=raw.encode(), method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 400
    assert f"'{field}'" in json.loads(err.value.read())["error"]
    state = sim.state()
    assert state["faults"] == [] and state["positions"] == []
    assert state["account"]["TotalCashValue"] == "1000000.00"
