"""The historical probe: does a small historical-bars request come back, how fast, and sane?

Runs as its own scheduled task with its own timeout, so a slow historical farm never delays the
other probes. Pacing: the configured interval is at least 15 s (identical requests within 15 s are
violations), and after a pacing error (162) the next run is skipped.
"""

from __future__ import annotations

import asyncio
import itertools
import time

from ib_async import Contract, RequestError, Stock
from loguru import logger

from probes.active.pacing import gateway_budget, historical_key, is_pacing_error
from probes.outcome import ProbeFailure
from probes.passive.base import PassiveContext, Schedule
from probes.state import LATENCY_BUCKETS, Distribution

PACING_CODE = 162


class HistoricalProbe:
    """Requests the configured bars; success = bars returned in chronological order, in time."""

    name = "historical"

    def __init__(self, ctx: PassiveContext) -> None:
        self.session = ctx.session
        self.config = config = ctx.config.probes.historical
        self.state = ctx.state
        if config.enabled:  # no run counters for a probe that never runs
            self.recorder = ctx.state.outcomes.recorder(self.name)
        self.duration = Distribution(LATENCY_BUCKETS)
        self.bars: dict[str, int] = {}
        self.timeouts = 0
        self.contract: Contract | None = None
        self.skip_next = False
        self.session.on_disconnected.append(self._forget_contract)

    def schedule(self) -> Schedule | None:
        return Schedule(self.config.interval, self.config.timeout + 1) if self.config.enabled else None

    def _forget_contract(self) -> None:
        self.contract = None

    async def _qualified(self) -> Contract:
        if self.contract is None:
            contract = Stock(self.config.symbol, "SMART", "USD")
            await asyncio.wait_for(self.session.ib.qualifyContractsAsync(contract),
                                   self.session.config.request_timeout)
            if not contract.conId:
                raise ProbeFailure(f"cannot qualify {self.config.symbol}")
            self.contract = contract
        return self.contract

    async def run_once(self) -> None:
        if not self.session.connected:
            raise ProbeFailure("not connected")
        if self.skip_next:
            self.skip_next = False
            raise ProbeFailure("skipped: backing off after a pacing violation (162)")
        cfg = self.config
        contract = await self._qualified()
        # one historical budget with gatewatch's other clients of this Gateway (the rate probe's)
        gateway = self.session.config
        await gateway_budget(gateway.host, gateway.port).historical.acquire(
            historical_key(contract.conId, cfg.duration, cfg.bar_size, cfg.what_to_show, cfg.use_rth),
            contract.conId)
        started = time.monotonic()
        try:
            bars = await self.session.ib.reqHistoricalDataAsync(
                contract, "", cfg.duration, cfg.bar_size, cfg.what_to_show, cfg.use_rth,
                formatDate=2, timeout=cfg.timeout)
        except RequestError as exc:
            if is_pacing_error(exc.code, exc.message):
                self.state.pacing_backoffs[str(PACING_CODE)] += 1
                self.skip_next = True
                logger.warning("historical: pacing violation (162), skipping the next request")
            raise ProbeFailure(f"historical request refused: {exc.code} {exc.message}") from exc
        elapsed = time.monotonic() - started
        symbol = cfg.symbol
        if not bars and elapsed >= cfg.timeout * 0.98:
            self.timeouts += 1
            raise ProbeFailure(f"historical request timed out after {cfg.timeout:g} s")
        self.duration.observe(elapsed)
        self.bars[symbol] = len(bars)
        if not bars:
            raise ProbeFailure("historical request returned no bars")
        dates = [bar.date for bar in bars]
        if any(b <= a for a, b in itertools.pairwise(dates)):
            raise ProbeFailure("historical bars are not in chronological order")
