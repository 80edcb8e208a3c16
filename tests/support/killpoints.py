"""Randomised stops in the order path: SIGKILL (then recovery) and SIGTERM (unwind) of `probe run`
and the exporter, each followed by a check that nothing is left behind.

Kill points are chosen in the order path from the process's own log: each line that marks a step
of it (an order about to be sent, a re-price, an escalation, a probe's end, a clean-up action) is a
candidate; a stop lands on the N-th such line (N random) plus a random 0-250 ms, so stops fall
before, during and after sends, fills, cancels and closes. The checks: no probe order working, no
probe position (the simulator's account holds exactly the positions others opened), the others'
positions and working order unchanged, and the journal flat.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ib_async import IB, LimitOrder, Stock

from gatewatch.config import GatewatchConfig
from gatewatch.localstack.net import free_port
from probes.active.journal import JournalReader
from probes.active.runner import run_probes, unwind_bound
from simulator.testing import SimHandle

ROOT = Path(__file__).resolve().parents[2]
ORDER_PATH = re.compile(
    r"probe order \S+ (BUY|SELL) .* sent|re-pricing to|escalat|ESCALAT|active probe \w+ (passed|FAILED)"
    r"|probe cleanup:"
)
WORKING = ("PendingSubmit", "PreSubmitted", "Submitted", "ApiPending", "PendingCancel")
PROBES = ["fill", "cancel", "close", "cancel_race", "duplicate", "close_retry"]
FOREIGN_CLIENT = 55
FOREIGN = {"SPY": 2.0, "QQQ": -1.0}
"""Positions another client (the trading bot) holds throughout: the probes must never change them."""


@dataclass
class Stop:
    """One stop and what it left."""

    signal: str
    target: str
    marker: str
    seconds: float
    """SIGTERM: from the signal to the process's exit; SIGKILL: recovery's duration."""
    leftovers: list[str]


async def foreign_book(sim: SimHandle) -> IB:
    """The trading bot's positions (SPY +2, QQQ -1) and one resting order of its own; stays connected."""
    ib = IB()
    await ib.connectAsync("127.0.0.1", sim.port, clientId=FOREIGN_CLIENT, timeout=5)
    for symbol, qty in FOREIGN.items():
        [contract] = await ib.qualifyContractsAsync(Stock(symbol, "SMART", "USD"))
        quote = sim.state()["quotes"][symbol]
        price = round(quote["ask"] + 1, 2) if qty > 0 else round(quote["bid"] - 1, 2)
        ib.placeOrder(contract, LimitOrder("BUY" if qty > 0 else "SELL", abs(qty), price, orderRef="bot-open"))
    [spy] = await ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))
    ib.placeOrder(spy, LimitOrder("BUY", 1, 1.00, orderRef="bot-resting"))
    for _ in range(100):
        if _held(sim) == FOREIGN and _bot_resting(sim):
            return ib
        await asyncio.sleep(0.05)
    raise AssertionError(f"the bot's book did not settle: {_held(sim)}")


def _held(sim: SimHandle) -> dict[str, float]:
    return {p["symbol"]: float(p["position"]) for p in sim.state()["positions"] if p["position"]}


def _bot_resting(sim: SimHandle) -> bool:
    return any(o["orderRef"] == "bot-resting" and o["status"] in WORKING for o in sim.state()["orders"])


def leftovers(sim: SimHandle, config: GatewatchConfig) -> list[str]:
    """What a stop left behind: working probe orders, probe positions, changed foreign state."""
    prefix = config.active.order_ref_prefix + ":"
    found = [f"probe order working: {o['orderRef']} ({o['status']})" for o in sim.state()["orders"]
             if str(o.get("orderRef") or "").startswith(prefix) and o["status"] in WORKING and not o["whatIf"]]
    held = _held(sim)
    for symbol in sorted(set(held) | set(FOREIGN)):
        diff = held.get(symbol, 0.0) - FOREIGN.get(symbol, 0.0)
        if diff:
            kind = "probe position" if diff > 0 and symbol == "SPY" else "non-probe position changed"
            found.append(f"{kind}: {symbol} {held.get(symbol, 0.0):+g} (others hold {FOREIGN.get(symbol, 0.0):+g})")
    if not _bot_resting(sim):
        found.append("the bot's resting order is no longer working")
    with JournalReader(config.active.journal_path) as journal:
        if journal.net_positions():
            found.append(f"journal still lists probe positions {journal.net_positions()}")
    return found


def leftovers_simple(sim: SimHandle, config: GatewatchConfig) -> list[str]:
    """:func:`leftovers` without the bot's book: no probe order working, nothing held, journal flat."""
    prefix = config.active.order_ref_prefix + ":"
    found = [f"probe order working: {o['orderRef']} ({o['status']})" for o in sim.state()["orders"]
             if str(o.get("orderRef") or "").startswith(prefix) and o["status"] in WORKING and not o["whatIf"]]
    found += [f"position left: {symbol} {qty:+g}" for symbol, qty in _held(sim).items()]
    with JournalReader(config.active.journal_path) as journal:
        if journal.net_positions():
            found.append(f"journal still lists probe positions {journal.net_positions()}")
    return found


def write_config(config: GatewatchConfig, folder: Path) -> Path:
    path = folder / "gatewatch.yaml"
    path.write_text(config.model_dump_json())  # JSON is YAML
    return path


def command(target: str, config_path: Path) -> list[str]:
    if target == "probe run":
        return [sys.executable, "-m", "gatewatch", "probe", "run", "--config", str(config_path), "--only", *PROBES]
    return [sys.executable, "-m", "gatewatch", "exporter", "--config", str(config_path),
            "--listen", f"127.0.0.1:{free_port()}"]


async def _drain(stream: asyncio.StreamReader, sink: list[str]) -> None:
    while line := await stream.readline():
        sink.append(line.decode(errors="replace"))


async def stop_once(
    sim: SimHandle, config: GatewatchConfig, config_path: Path, *, target: str, sig: signal.Signals,
    rng: random.Random, max_marker: int,
) -> Stop:
    """Start ``target``, stop it with ``sig`` at a random order-path point, recover, report leftovers."""
    proc = await asyncio.create_subprocess_exec(
        *command(target, config_path), cwd=ROOT, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stderr is not None
    wanted, seen, marker, log = rng.randint(1, max_marker), 0, "run ended first", []
    try:
        while line := (await asyncio.wait_for(proc.stderr.readline(), 60)).decode(errors="replace"):
            log.append(line)
            match = ORDER_PATH.search(line)
            if match:
                seen += 1
                if seen == wanted:
                    marker = f"{match.group(0)[:40]} #{seen}"
                    break
        drain = asyncio.ensure_future(_drain(proc.stderr, log))
        await asyncio.sleep(rng.uniform(0, 0.25))
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        signalled = time.monotonic()
        try:
            await asyncio.wait_for(proc.wait(), unwind_bound(config) + 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return Stop(sig.name, target, marker, float("inf"), ["did not exit within the unwind bound"])
        exited = time.monotonic() - signalled
        await drain
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if sig == signal.SIGTERM:
        left = leftovers(sim, config)  # the unwind alone must have cleaned up
        if any("Traceback" in line for line in log):
            left.append("a traceback on stop: " + "".join(log[-5:]))
        await _recover(config)
        return Stop(sig.name, target, marker, exited, left)
    started = time.monotonic()
    report = await _recover(config)
    left = leftovers(sim, config)
    if not report.ok:
        left.append(f"recovery failed: {report.results}")
    return Stop(sig.name, target, marker, time.monotonic() - started, left)


async def _recover(config: GatewatchConfig) -> Any:
    """The next start: a run of the recovery probe (recovery happens before any probe)."""
    return await run_probes(config, only=["error_recovery"], backoff_base=0.05)


async def campaign(
    sim: SimHandle, config: GatewatchConfig, folder: Path, plan: list[tuple[str, signal.Signals]], *,
    seed: int, max_marker: int = 22, on_stop: Callable[[Stop], None] | None = None,
) -> list[Stop]:
    """Run each (target, signal) of ``plan`` in a random order; the bot's book is set up first."""
    rng = random.Random(seed)
    config_path = write_config(config, folder)
    bot = await foreign_book(sim)
    stops = []
    try:
        for target, sig in rng.sample(plan, len(plan)):
            stop = await stop_once(sim, config, config_path, target=target, sig=sig, rng=rng,
                                   max_marker=max_marker)
            stops.append(stop)
            if on_stop:
                on_stop(stop)
    finally:
        bot.disconnect()
    return stops


def kill_config(sim: SimHandle, folder: Path) -> GatewatchConfig:
    """Fast probe timings; the exporter runs the active probes back to back at all hours."""
    return GatewatchConfig.model_validate({
        "gateway": {"host": "127.0.0.1", "port": sim.port, "paper_ports": [sim.port], "connect_timeout": 5,
                    "request_timeout": 5},
        "active": {"enabled": True, "journal_path": str(folder / "journal.sqlite"), "fill_timeout": 3,
                   "cancel_timeout": 3,
                   "close_retry_wait": 0.25, "market_hours_only": False, "interval": 1,
                   "max_orders_per_hour": 100000},
        "probes": {"symbols": ["SPY"], "historical": {"enabled": False}},
    })
