"""Bench: the whole active probe run against the simulator, and fill-latency measurement error.

Goals: whole run < 10 s; event-driven fill-latency error < 2 ms against the simulator's own
received_at/filled_at stamps, shown next to a 1-second polling loop's error (the alternative).
Prints a table; run with ``.venv/bin/python bench/bench_probes.py``.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loguru import logger

from gatewatch.config import GatewatchConfig
from probes.active.runner import ActiveSession, run_probes
from simulator import running_simulator

FILLS = 20
POLL_PERIOD = 1.0


def config_for(port: int, folder: str) -> GatewatchConfig:
    return GatewatchConfig.model_validate({
        "gateway": {"host": "127.0.0.1", "port": port, "paper_ports": [port], "connect_timeout": 5,
                    "request_timeout": 5},
        "active": {"journal_path": f"{folder}/journal.sqlite", "fill_timeout": 5, "cancel_timeout": 5,
                   "close_retry_wait": 0.3, "max_orders_per_hour": 1000},
    })


async def measure_fills(config: GatewatchConfig, sim_state) -> list[tuple[float, float]]:
    """(event-measured latency, simulator's own filled_at - received_at) per fill."""
    pairs = []
    async with ActiveSession(config) as session:
        ctx = await session.context()
        for _ in range(FILLS):
            sent, result = await ctx.orders.buy_marketable(ctx.instrument, probe="bench")
            await ctx.orders.close(ctx.instrument, 1, probe="bench")
            order = next(o for o in sim_state()["orders"] if o["orderRef"] == sent.order_ref)
            if result.latency is not None and order["filled_at"]:
                pairs.append((result.latency, order["filled_at"] - order["received_at"]))
    return pairs


def main() -> None:
    logger.remove()
    with running_simulator(port=0, control_port=0, seed=3, symbols=["SPY"]) as sim:
        folder = tempfile.mkdtemp()
        config = config_for(sim.port, folder)
        started = time.perf_counter()
        report = asyncio.run(run_probes(config, backoff_base=2.0))
        whole = time.perf_counter() - started
        pairs = asyncio.run(measure_fills(config_for(sim.port, tempfile.mkdtemp()), sim.state))
    errors = [abs(measured - true) * 1000 for measured, true in pairs]
    # A 1 s polling loop sees a fill at the next poll: its error is uniform in [0, period).
    polling = [((i + 0.5) / len(pairs)) * POLL_PERIOD * 1000 for i in range(len(pairs))] if pairs else []
    print(f"{'figure':<48}{'value':>12}{'goal':>10}")
    print(f"{'whole probe run (11 probes), s':<48}{whole:>12.2f}{'< 10':>10}")
    print(f"{'probes passed':<48}{sum(r.ok for r in report.results):>9}/{len(report.results):<2}")
    print(f"{'fills measured':<48}{len(pairs):>12}")
    if errors:
        print(f"{'event-driven fill latency error, median ms':<48}{statistics.median(errors):>12.3f}{'< 2':>10}")
        print(f"{'event-driven fill latency error, max ms':<48}{max(errors):>12.3f}{'< 2':>10}")
        print(f"{'median fill latency (event), ms':<48}{statistics.median(m for m, _ in pairs) * 1000:>12.3f}")
        print(f"{'1 s polling loop error, mean ms (expected)':<48}{statistics.mean(polling):>12.1f}")
        print(f"{'1 s polling loop error, max ms (expected)':<48}{max(polling):>12.1f}")
    else:
        print("no fill latencies measured", math.nan)


if __name__ == "__main__":
    main()
