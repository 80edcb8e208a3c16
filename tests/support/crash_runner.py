"""A probe runner that stops mid-probe and waits to be SIGKILLed (used by test_recovery_and_flatten).

Usage: python -m support.crash_runner CONFIG_JSON {resting|filled}; prints READY once the state is set.
"""

from __future__ import annotations

import asyncio
import sys

from gatewatch.config import GatewatchConfig
from probes.active.runner import ActiveSession


async def main(config_json: str, stage: str) -> None:
    config = GatewatchConfig.model_validate_json(config_json)
    session = ActiveSession(config)
    await session.__aenter__()
    ctx = await session.context()
    if stage == "resting":
        bid, _ = await ctx.orders.quote(ctx.instrument)
        sent = await ctx.orders.send_limit(ctx.instrument, "BUY", round(bid * 0.8, 2), probe="crash")
    else:
        sent, _ = await ctx.orders.buy_marketable(ctx.instrument, probe="crash")
    await ctx.orders.wait_done_or_filled(sent, 0.5)
    print("READY", flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
