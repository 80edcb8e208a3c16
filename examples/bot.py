"""A small trading bot to rehearse with: ib_async, through ``gatewatch proxy``, on a PAPER account.

What a real bot must do, in few lines: connect (to the proxy's port, 4012, instead of the
Gateway's), subscribe to quotes, reconnect with back-off when the connection drops, place a small
paper order now and then (a 1-share limit at the ask, then the closing one at the bid), and handle
the Gateway's errors (resubscribe after 1101, note 10197 and farm notices). The proxy measures it
all; ``gatewatch rehearse`` runs it against the simulator.

    python examples/bot.py --port 4012 --client-id 11 --symbols SPY,QQQ --order-every 60
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import random
import signal
import sys

from ib_async import IB, Contract, LimitOrder, Stock, Ticker
from loguru import logger

RESUBSCRIBE_CODES = {1101}  # connectivity restored, data lost: market data must be requested again
NOTICE_CODES = {1100, 1102, 2103, 2104, 2105, 2106, 2107, 2108, 2158, 10197}


class Bot:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.ib = IB()
        self.ib.RequestTimeout = 10
        self.contracts: dict[str, Contract] = {}
        self.tickers: dict[str, Ticker] = {}
        self.ib.errorEvent += self._on_error
        self._stop = asyncio.Event()

    def _on_error(self, req_id: int, code: int, text: str, contract: object) -> None:
        if code in RESUBSCRIBE_CODES:
            logger.warning("bot: {} {}: resubscribing market data", code, text)
            asyncio.get_event_loop().call_soon(self._resubscribe)
        elif code in NOTICE_CODES:
            logger.info("bot: Gateway notice {}: {}", code, text)
        else:
            logger.warning("bot: error {} (request {}): {}", code, req_id, text)

    def _resubscribe(self) -> None:
        for symbol, contract in self.contracts.items():
            with contextlib.suppress(Exception):
                self.ib.cancelMktData(contract)
            self.tickers[symbol] = self.ib.reqMktData(contract)

    async def connect(self) -> None:
        """Connect with exponential back-off and jitter, capped; subscribe again each time."""
        delay = 1.0
        while not self._stop.is_set():
            try:
                await self.ib.connectAsync(self.args.host, self.args.port, clientId=self.args.client_id, timeout=10)
                contracts = [Stock(s, "SMART", "USD") for s in self.args.symbols]
                qualified = await self.ib.qualifyContractsAsync(*contracts)
                self.contracts = {c.symbol: c for c in qualified if isinstance(c, Contract)}
                self.tickers = {s: self.ib.reqMktData(c) for s, c in self.contracts.items()}
                logger.info("bot: connected (client id {}), quotes for {}", self.args.client_id, sorted(self.tickers))
                return
            except (OSError, TimeoutError, ConnectionError) as exc:
                self.ib.disconnect()
                logger.warning("bot: connect failed ({}); retrying in {:.1f}s", exc or type(exc).__name__, delay)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self.args.max_backoff)

    async def trade_once(self) -> None:
        """Buy one share at the ask, then sell it at the bid: a small paper round trip."""
        symbol = self.args.symbols[0]
        ticker, contract = self.tickers.get(symbol), self.contracts.get(symbol)
        if ticker is None or contract is None or not _price(ticker.ask) or not _price(ticker.bid):
            return
        buy = self.ib.placeOrder(contract, LimitOrder("BUY", 1, ticker.ask, orderRef="examplebot"))
        for _ in range(100):
            if buy.isDone():
                break
            await asyncio.sleep(0.1)
        if buy.orderStatus.status != "Filled":
            if not buy.isDone():
                self.ib.cancelOrder(buy.order)
            return
        self.ib.placeOrder(contract, LimitOrder("SELL", 1, ticker.bid, orderRef="examplebot"))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, self._stop.set)
        deadline = loop.time() + self.args.duration if self.args.duration else math.inf
        next_order = loop.time() + self.args.order_every
        while not self._stop.is_set() and loop.time() < deadline:
            if not self.ib.isConnected():
                await self.connect()
                continue
            if self.args.order_every and loop.time() >= next_order:
                next_order = loop.time() + self.args.order_every
                try:
                    await self.trade_once()
                except Exception as exc:  # a failed order must not end the bot
                    logger.warning("bot: order round trip failed: {}", exc)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.5)
        self.ib.disconnect()
        logger.info("bot: stopped")


def _price(value: float) -> bool:
    return value == value and value > 0  # not NaN, not the -1 "no price"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=4012, help="the proxy's port (4012), not the Gateway's")
    p.add_argument("--client-id", type=int, default=11)
    p.add_argument("--symbols", default="SPY", type=lambda s: [x.strip().upper() for x in s.split(",") if x.strip()])
    p.add_argument("--order-every", type=float, default=60.0, help="seconds between round trips (0: never)")
    p.add_argument("--max-backoff", type=float, default=30.0)
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: run until signalled)")
    args = p.parse_args(argv)
    asyncio.run(Bot(args).run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
