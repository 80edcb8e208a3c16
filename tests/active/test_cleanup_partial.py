"""Clean-up and flatten close every contract they can: one they cannot close (no quote) is named, never a traceback,
and does not keep the probes' other positions open."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from ib_async import IB, LimitOrder, Stock
from support.active import held, open_orders, probes_buy

from probes.active.runner import run_probes
from probes.flatten import flatten
from simulator import running_simulator

ROOT = Path(__file__).resolve().parents[2]


def test_one_unclosable_position_does_not_keep_the_others_open(tmp_path, config_for):
    with running_simulator(account="DU1234567", seed=1, symbols=["SPY", "QQQ"], tick_hz=4.0, market="open",
                           starting_cash=1_000_000.0) as sim:
        config = config_for(sim)
        asyncio.run(probes_buy(config, ["QQQ", "SPY"]))
        assert held(sim) == {"QQQ": 1.0, "SPY": 1.0}
        sim.inject({"fault": "drop_bid_ask", "symbol": "QQQ", "for": 60})
        path = tmp_path / "gatewatch.yaml"
        path.write_text(config.model_dump_json())
        done = subprocess.run([sys.executable, "-m", "gatewatch", "flatten", "--config", str(path)],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert "Traceback" not in done.stderr, done.stderr[-2000:]
        assert done.returncode == 1 and "NOT closed 1 of QQQ" in done.stdout, done.stdout + done.stderr[-800:]
        assert held(sim) == {"QQQ": 1.0} and open_orders(sim) == []
        report = asyncio.run(run_probes(config, only=["timeout"]))  # recovery cannot close QQQ: the run says so
        assert not report.ok and "QQQ" in report.results[0].detail


async def _bot_buys(sim, symbols: list[str]) -> None:
    """Another client (the trading bot) buys 1 of each symbol: positions only flatten --all closes."""
    ib = IB()
    await ib.connectAsync("127.0.0.1", sim.port, clientId=55, timeout=5)
    try:
        for symbol in symbols:
            [contract] = await ib.qualifyContractsAsync(Stock(symbol, "SMART", "USD"))
            ib.placeOrder(contract, LimitOrder("BUY", 1, round(sim.state()["quotes"][symbol]["ask"] + 1, 2)))
        for _ in range(100):
            if held(sim) == dict.fromkeys(symbols, 1.0):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"the bot's positions did not settle: {held(sim)}")
    finally:
        ib.disconnect()


def test_flatten_all_closes_what_it_can_when_one_position_has_no_quote(config_for):
    with running_simulator(account="DU1234567", seed=1, symbols=["SPY", "QQQ"], tick_hz=4.0, market="open",
                           starting_cash=1_000_000.0) as sim:
        config = config_for(sim)
        asyncio.run(_bot_buys(sim, ["QQQ", "SPY"]))
        sim.inject({"fault": "drop_bid_ask", "symbol": "QQQ", "for": 60})
        done = asyncio.run(flatten(config, everything=True))
        assert any(line.startswith("NOT closed 1 of 1 QQQ") for line in done), done
        assert "closed 1 SPY" in done and held(sim) == {"QQQ": 1.0} and open_orders(sim) == []
