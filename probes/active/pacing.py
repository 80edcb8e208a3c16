"""Pacing: stay below the Gateway's message limit before sending, and back off when told to.

Why before: IBKR counts violations of the message rate (error 100) and ends the session after
three of them; reacting after the fact is too late on a real Gateway. :class:`RequestPacer` spaces
requests below the limit. Why back off as well: a pacing error can still arrive (another client,
historical pacing 162); :class:`PacingGovernor` then pauses every paced request for 2 s, 4 s, 8 s
(cumulative, so three errors in a row wait 14 s) and counts ``gatewatch_pacing_backoffs_total``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ib_async import IB, Contract
from loguru import logger

from probes.state import ProbeState

PACING_CODES = (100, 162)
DEFAULT_MAX_RATE = 20.0
"""Requests per second: well under 50 msg/s (100 market data lines / 2) and ib_async's own 45/s."""
MAX_BACKOFF_STEPS = 3

T = TypeVar("T")


class RequestPacer:
    """A sliding one-second window: at most ``max_rate`` requests start in any second."""

    def __init__(self, max_rate: float = DEFAULT_MAX_RATE) -> None:
        self.max_rate = max_rate
        self._starts: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                while self._starts and now - self._starts[0] >= 1.0:
                    self._starts.popleft()
                if len(self._starts) < self.max_rate:
                    self._starts.append(now)
                    return
                await asyncio.sleep(1.0 - (now - self._starts[0]) + 0.001)


class PacingGovernor:
    """Listens for pacing errors, pauses paced requests, retries requests hit by them."""

    def __init__(
        self,
        ib: IB,
        *,
        backoff_base: float = 2.0,
        metrics: ProbeState | None = None,
        pacer: RequestPacer | None = None,
    ) -> None:
        self.ib = ib
        self.backoff_base = backoff_base
        self.metrics = metrics
        self.pacer = pacer or RequestPacer()
        self.errors_seen: dict[int, int] = {code: 0 for code in PACING_CODES}
        self.backoffs = 0
        self._step = 0
        self._resume_at = 0.0
        ib.errorEvent += self._on_error

    def close(self) -> None:
        self.ib.errorEvent -= self._on_error

    def _on_error(self, req_id: int, code: int, message: str, contract: Contract | None = None) -> None:
        if code not in PACING_CODES:
            return
        self.errors_seen[code] += 1
        self._step = min(self._step + 1, MAX_BACKOFF_STEPS)
        delay = self.backoff_base * 2 ** (self._step - 1)
        now = time.monotonic()
        self._resume_at = max(self._resume_at, now) + delay
        self.backoffs += 1
        if self.metrics:
            self.metrics.pacing_backoffs[str(code)] += 1
        logger.warning("pacing error {} (req {}): backing off {:.2f} s: {}", code, req_id, delay, message)

    async def ready(self) -> None:
        """Wait out any back-off in force, then a pacer slot."""
        while (wait := self._resume_at - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        await self.pacer.acquire()

    async def request(
        self,
        make: Callable[[], Awaitable[T]],
        *,
        timeout: float,
        failed: Callable[[T], bool] = lambda _: False,
    ) -> T:
        """Run a request paced; retry (at most 3 times) when a pacing error hit it.

        ib_async ends a request hit by 100/162 with an empty result rather than an exception, so
        "hit" means: a pacing error arrived while it ran and ``failed(result)`` says it is empty.
        """
        for attempt in range(MAX_BACKOFF_STEPS + 1):
            await self.ready()
            before = sum(self.errors_seen.values())
            result = await asyncio.wait_for(make(), timeout)
            hit = sum(self.errors_seen.values()) > before
            if not (hit and failed(result)):
                if not hit:
                    self._step = 0
                return result
            logger.info("request hit by pacing (attempt {}), retrying after back-off", attempt + 1)
        raise RuntimeError(f"request still paced after {MAX_BACKOFF_STEPS} back-offs")
