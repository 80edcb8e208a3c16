"""Helpers reading the simulator's state (shared by the active-probe tests)."""

from __future__ import annotations

from typing import Any

from ib_async import Stock

from gatewatch.config import GatewatchConfig
from probes.active.runner import ActiveSession
from simulator.testing import SimHandle


def real_orders(sim: SimHandle) -> list[dict[str, Any]]:
    """Orders that could trade (what-if checks excluded)."""
    return [o for o in sim.state()["orders"] if not o["whatIf"]]


def open_orders(sim: SimHandle) -> list[dict[str, Any]]:
    return [o for o in sim.state()["orders"] if o["status"] in ("PendingSubmit", "PreSubmitted", "Submitted")
            and not o["whatIf"]]


def held(sim: SimHandle) -> dict[str, float]:
    return {p["symbol"]: p["position"] for p in sim.state()["positions"] if p["position"]}


async def probes_buy(config: GatewatchConfig, symbols: list[str]) -> None:
    """One share of each symbol bought as a probe would (journalled, tagged): positions the probes hold."""
    async with ActiveSession(config) as session:
        for symbol in symbols:
            [contract] = await session.ib.qualifyContractsAsync(Stock(symbol, "SMART", "USD"))
            await session.orders.buy_marketable(contract, probe="fill")
