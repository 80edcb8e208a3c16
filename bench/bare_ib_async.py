"""The floor for the exporter's overhead: a bare ib_async script holding the same subscriptions.

It connects, streams the same symbols (reqMktData) and keeps account values and positions
subscribed, and does nothing else: no metrics, no probes, no HTTP. ``bench/run_all.py`` compares
the exporter's CPU and memory to this script's, so the figure is gatewatch's own cost.

Usage: python bench/bare_ib_async.py --port P --symbols SPY,QQQ,IWM [--client-id 951]
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from ib_async import IB, Contract, Stock


async def hold(port: int, symbols: list[str], client_id: int) -> None:
    ib = IB()
    ib.RequestTimeout = 10
    await ib.connectAsync("127.0.0.1", port, clientId=client_id, timeout=10)
    contracts = await ib.qualifyContractsAsync(*(Stock(s, "SMART", "USD") for s in symbols))
    tickers = [ib.reqMktData(c) for c in contracts if isinstance(c, Contract)]
    await ib.reqAccountUpdatesAsync(ib.managedAccounts()[0])
    await ib.reqPositionsAsync()
    print(f"holding {len(tickers)} quote streams", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    ib.disconnect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--symbols", default="SPY,QQQ,IWM")
    parser.add_argument("--client-id", type=int, default=951)
    args = parser.parse_args()
    asyncio.run(hold(args.port, [s for s in args.symbols.split(",") if s], args.client_id))


if __name__ == "__main__":
    main()
