"""Crash recovery (SIGKILL mid-probe) and flatten's scope (ours only, or --all by id)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from ib_async import IB, LimitOrder, Stock
from support.active import held, open_orders, real_orders

from probes.active.journal import Journal, JournalReader
from probes.active.runner import run_probes
from probes.flatten import flatten

ROOT = Path(__file__).resolve().parents[2]


def _run_until_ready(config, stage: str) -> subprocess.Popen[str]:
    # run as a module from the project root: the root's packages come first, tests/ gives ``support``
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    proc = subprocess.Popen([sys.executable, "-m", "support.crash_runner", config.model_dump_json(), stage],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "READY", line
    return proc


@pytest.mark.parametrize("stage", ["resting", "filled"])
async def test_sigkill_mid_probe_then_next_run_recovers(sim, config_for, stage):
    config = config_for(sim)
    proc = await asyncio.to_thread(_run_until_ready, config, stage)
    proc.send_signal(signal.SIGKILL)
    proc.wait(5)
    if stage == "resting":
        assert len(open_orders(sim)) == 1
    else:
        assert held(sim) == {"SPY": 1.0}
    report = await run_probes(config, only=["error_recovery"], backoff_base=0.05)
    assert report.ok, report.results
    assert report.recovered
    assert open_orders(sim) == []
    assert held(sim) == {}
    journal = Journal(config.active.journal_path)
    try:
        assert journal.open_orders() == [] and journal.net_positions() == {}
    finally:
        journal.close()


async def _foreign_resting_order(sim, client_id: int) -> IB:
    ib = IB()
    await ib.connectAsync("127.0.0.1", sim.port, clientId=client_id, timeout=5)
    [spy] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    ib.placeOrder(spy, LimitOrder("BUY", 1, 1.00, orderRef="bot-order"))
    for _ in range(50):
        if any(o["orderRef"] == "bot-order" for o in open_orders(sim)):
            break
        await asyncio.sleep(0.05)
    return ib


async def test_flatten_touches_only_probe_orders_and_all_cancels_by_id(sim, config_for):
    config = config_for(sim)
    bot = await _foreign_resting_order(sim, client_id=77)
    proc = await asyncio.to_thread(_run_until_ready, config, "resting")
    proc.send_signal(signal.SIGKILL)
    proc.wait(5)
    assert len(open_orders(sim)) == 2
    await flatten(config)
    assert [o["orderRef"] for o in open_orders(sim)] == ["bot-order"]
    bot.disconnect()  # the owner must be gone: only a client may cancel its own orders by id
    await asyncio.sleep(0.2)
    done = await flatten(config, everything=True)
    assert any("client 77" in line for line in done), done
    assert open_orders(sim) == []


def test_flatten_all_without_yes_and_no_stdin_refuses(sim, config_for, tmp_path):
    config = config_for(sim)
    path = tmp_path / "gw.yaml"
    path.write_text(config.model_dump_json())  # JSON is YAML
    result = subprocess.run([sys.executable, "-m", "gatewatch", "flatten", "--config", str(path), "--all"],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert result.returncode == 1
    assert "not confirmed" in result.stderr
    assert sim.state()["clients"] == [] or all(c.get("clientId") != 902 for c in sim.state()["clients"])


async def _foreign_position(sim, client_id: int) -> None:
    """The trading bot (another client id) buys 1 SPY and keeps it."""
    ib = IB()
    await ib.connectAsync("127.0.0.1", sim.port, clientId=client_id, timeout=5)
    try:
        [spy] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
        ask = sim.state()["quotes"]["SPY"]["ask"]
        ib.placeOrder(spy, LimitOrder("BUY", 1, round(ask + 1, 2), orderRef="bot-position"))
        for _ in range(50):
            if held(sim) == {"SPY": 1.0}:
                break
            await asyncio.sleep(0.05)
        assert held(sim) == {"SPY": 1.0}
    finally:
        ib.disconnect()


async def test_flatten_all_close_of_a_foreign_position_is_not_a_probe_short(sim, config_for):
    config = config_for(sim)
    await _foreign_position(sim, client_id=78)
    done = await flatten(config, everything=True)
    assert any(line.startswith("closed 1 SPY") for line in done), done
    assert held(sim) == {}
    journal = Journal(config.active.journal_path)
    try:
        [close] = journal.all_orders()
        assert (close.scope, close.action, close.filled) == ("operator", "SELL", 1.0)
        assert close.order_ref.startswith("gatewatch:flatten-all:")
        assert journal.net_positions() == {}, "the operator close shows up as a probe position"
    finally:
        journal.close()
    orders_before = len(sim.state()["orders"])
    report = await run_probes(config, only=["error_recovery"], backoff_base=0.05)
    assert report.ok and report.recovered == []
    assert len(sim.state()["orders"]) == orders_before, "recovery sent an order for a phantom position"
    assert held(sim) == {}


@pytest.mark.parametrize("command", [["flatten"], ["probe", "run", "--only", "fill"]])
def test_a_corrupt_journal_exits_2_naming_where_it_was_kept(sim, config_for, tmp_path, command):
    config = config_for(sim)
    journal = Path(config.active.journal_path)
    journal.parent.mkdir(parents=True, exist_ok=True)
    damaged = b"SQLite format 3\x00" + b"\x17" * 8000
    journal.write_bytes(damaged)
    path = tmp_path / "gw.yaml"
    path.write_text(config.model_dump_json())
    result = subprocess.run([sys.executable, "-m", "gatewatch", *command, "--config", str(path)],
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [kept] = journal.parent.glob("probes.sqlite.corrupt-*")
    assert kept.read_bytes() == damaged, "the corrupt journal must be kept as it was"
    assert "corrupt" in result.stderr and str(kept) in result.stderr
    assert real_orders(sim) == []


async def test_recovery_cancels_a_probe_order_left_under_an_earlier_probe_client_id(sim, config_for):
    """probe_client_id changed between a crashed run and the next: its journalled order is still ours."""
    config = config_for(sim)
    proc = await asyncio.to_thread(_run_until_ready, config, "resting")
    proc.send_signal(signal.SIGKILL)
    proc.wait(5)
    assert len(open_orders(sim)) == 1
    config.gateway.probe_client_id += 1
    report = await run_probes(config, only=["error_recovery"], backoff_base=0.05)
    assert report.ok, report.results
    assert open_orders(sim) == [], "the earlier client's probe order is still working"
    with JournalReader(config.active.journal_path) as journal:
        assert journal.open_orders() == []
