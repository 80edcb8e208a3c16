"""Issue 11 items 1 and 2: risk-reducing orders are capped by what the journal AND the Gateway hold;
the hourly cap never blocks a close, a cancel or flatten."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from ib_async import IB, LimitOrder, Stock
from support.active import held, open_orders, real_orders

from exporter.metrics import Metrics
from probes.active.journal import Journal, JournalReader
from probes.active.runner import ActiveSession, run_probes
from probes.flatten import flatten

ROOT = Path(__file__).resolve().parents[2]
DISAGREEMENTS = "gatewatch_probe_position_disagreements"


async def _probes_buy_one(config) -> int:
    """The probes buy 1 SPY and keep it (as a run killed after its buy filled would); returns conId."""
    async with ActiveSession(config) as session:
        ctx = await session.context()
        await ctx.orders.buy_marketable(ctx.instrument, probe="fill")
        return ctx.instrument.conId


async def _hand_trade(sim, action: str, quantity: float) -> None:
    """Someone else (another client id) trades SPY: the Gateway's position moves, the journal's does not."""
    ib = IB()
    await ib.connectAsync("127.0.0.1", sim.port, clientId=77, timeout=5)
    try:
        [spy] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
        before = held(sim).get("SPY", 0.0)
        quote = sim.state()["quotes"]["SPY"]
        price = round(quote["ask"] + 1, 2) if action == "BUY" else round(quote["bid"] - 1, 2)
        ib.placeOrder(spy, LimitOrder(action, quantity, price, orderRef="by-hand"))
        target = before + (quantity if action == "BUY" else -quantity)
        for _ in range(100):
            if held(sim).get("SPY", 0.0) == target:
                break
            await asyncio.sleep(0.05)
        assert held(sim).get("SPY", 0.0) == target
    finally:
        ib.disconnect()


def _net(config) -> dict[int, float]:
    with JournalReader(config.active.journal_path) as journal:
        return journal.net_positions()


async def test_close_never_sells_what_the_gateway_lost_and_flatten_repairs_it(sim, config_for):
    config = config_for(sim)
    con_id = await _probes_buy_one(config)
    await _hand_trade(sim, "SELL", 1)  # a hand trade closes the probes' share
    assert held(sim) == {} and _net(config) == {con_id: 1.0}
    sells_before = sum(o["action"] == "SELL" for o in real_orders(sim))

    metrics = Metrics()
    report = await run_probes(config, only=["close"], metrics=metrics, backoff_base=0.05)
    [close] = report.results
    assert not close.ok and "disagreement" in close.detail, close.detail  # before: PASS, Gateway -1
    assert held(sim) == {}, "the probes sold what they did not hold"
    assert sum(o["action"] == "SELL" for o in real_orders(sim)) == sells_before
    assert metrics.registry.get_sample_value(DISAGREEMENTS) == 1

    listed = await flatten(config)  # the default only lists the repair
    assert any(line.startswith("NOT repaired") and "write off +1" in line for line in listed), listed
    assert _net(config) == {con_id: 1.0}
    done = await flatten(config, repair=True)
    assert any("wrote off +1" in line for line in done), done
    assert _net(config) == {} and held(sim) == {}
    assert sum(o["action"] == "SELL" for o in real_orders(sim)) == sells_before, "a write-off sends nothing"

    report = await run_probes(config, only=["close"], metrics=metrics, backoff_base=0.05)
    assert report.ok, report.results
    assert held(sim) == {} and metrics.registry.get_sample_value(DISAGREEMENTS) == 0


async def test_cleanup_leaves_a_position_the_gateway_shows_less_of_untouched(sim, config_for):
    """Journal +1, Gateway holds 1 of the bot's after losing the probes' share: sell nothing."""
    config = config_for(sim)
    con_id = await _probes_buy_one(config)
    await _hand_trade(sim, "SELL", 2)  # the Gateway lost the probes' share, and someone is short 1
    report = await run_probes(config, only=["error_recovery"], backoff_base=0.05)
    assert report.ok, report.results  # a probe that sells nothing still runs
    assert held(sim) == {"SPY": -1.0} and _net(config) == {con_id: 1.0}


async def test_flatten_repair_buys_back_only_the_short_the_probes_caused(sim, config_for):
    config = config_for(sim)
    con_id = await _probes_buy_one(config)
    await _hand_trade(sim, "SELL", 4)  # Gateway -3 (a bot short of 3 plus the lost probe share)
    journal = Journal(config.active.journal_path)  # the journal of an older version's bad close: -1
    journal.record_intent(order_ref="gatewatch:close:old.1", probe="close", run_id="old", client_id=902,
                          order_id=99999, con_id=con_id, contract={"conId": con_id}, action="SELL", quantity=2,
                          order_type="LMT", limit_price=1.0)
    journal.update_status("gatewatch:close:old.1", "Filled", 2, 1.0)
    journal.record_fill(exec_id="old-exec", order_ref="gatewatch:close:old.1", con_id=con_id, side="SLD",
                        shares=2, price=1.0)
    journal.close()
    assert _net(config) == {con_id: -1.0} and held(sim) == {"SPY": -3.0}
    done = await flatten(config, repair=True)
    assert any("bought back 1" in line for line in done), done
    assert held(sim) == {"SPY": -2.0}, "only the probes' short of 1 is bought back, not the bot's"
    assert _net(config) == {}


async def test_hourly_cap_never_blocks_a_close_or_flatten(sim, config_for, tmp_path):
    config = config_for(sim, max_orders_per_hour=1)
    report = await run_probes(config, only=["close_retry"], backoff_base=0.05)  # its buy is the hour's one
    [result] = report.results
    assert result.ok, result.detail  # before: its close refused (rate), +1 left
    assert held(sim) == {} and open_orders(sim) == []

    await _probes_buy_one(config_for(sim, max_orders_per_hour=3))  # +1 again: 3 orders, cap 1 passed
    path = tmp_path / "gw.yaml"
    path.write_text(config.model_dump_json())
    flat = subprocess.run([sys.executable, "-m", "gatewatch", "flatten", "--config", str(path)],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert flat.returncode == 0, flat.stdout + flat.stderr  # before: exit 1 "refused (rate)"
    assert held(sim) == {} and "closed 1" in flat.stdout

    report = await run_probes(config, only=["fill"], backoff_base=0.05)
    assert "rate" in report.results[0].detail, "risk-increasing orders stay capped"


async def test_the_notional_cap_never_blocks_closing_what_the_probes_hold(sim, config_for):
    """A price that rose past active.max_notional after the buy: the close (risk-reducing) still goes."""
    ask = sim.state()["quotes"]["SPY"]["ask"]
    config = config_for(sim, max_notional=round(ask * 1.05, 2))
    await _probes_buy_one(config)
    await asyncio.to_thread(sim.inject, {"fault": "price_jump", "symbol": "SPY", "pct": 20})
    done = await flatten(config)
    assert any(line.startswith("closed 1") for line in done), done
    assert held(sim) == {} and _net(config) == {} and open_orders(sim) == []
