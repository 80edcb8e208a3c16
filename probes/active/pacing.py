"""Pacing: stay below the Gateway's message limit before sending, and back off when told to.

Why before: IBKR counts violations of the message rate (error 100) and ends the session after
three of them; reacting after the fact is too late on a real Gateway. :class:`RequestPacer` spaces
requests below the limit. Why back off as well: a pacing error can still arrive (another client,
historical pacing 162); :class:`PacingGovernor` then pauses every paced request for 2 s, 4 s, 8 s
(cumulative, so three errors in a row wait 14 s) and counts ``gatewatch_pacing_backoffs_total``.

Why one budget per Gateway: gatewatch has several clients on one Gateway in one process (the
exporter's connection, the active probes', the live suite's). Each pacing itself alone is not
enough: the rate probe's paced burst and the historical probe's request, each within its own
limit, add up at the Gateway. :func:`gateway_budget` gives every client of one Gateway (host, port)
the same :class:`RequestPacer` and :class:`HistoricalPacer`, so gatewatch's own load never causes
a pacing error it would then report.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from ib_async import IB, Contract
from loguru import logger

from probes.state import ProbeState

PACING_CODES = (100, 162)
"""100 is always the message rate; 162 is pacing only when its text says so (:func:`is_pacing_error`)."""
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


HISTORICAL_IDENTICAL_GAP = 15.5
"""Seconds between identical historical requests (IBKR: none within 15 s), with a margin."""
HISTORICAL_SAME_CONTRACT = (4, 2.5)
"""At most 4 requests for one contract in 2.5 s (IBKR: six or more within 2 s is a violation)."""
HISTORICAL_WINDOW = (50, 600.0)
"""At most 50 requests in 10 minutes (IBKR: no more than 60)."""


class HistoricalPacer:
    """IBKR's three historical-data pacing rules, kept with a margin across all of gatewatch's clients."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.log: deque[tuple[float, str, int]] = deque()
        self._lock = asyncio.Lock()

    def delay(self, key: str, con_id: int, now: float) -> float:
        """Seconds to wait before a request (``key``: its parameters) for ``con_id`` may go; 0 now."""
        window_n, window = HISTORICAL_WINDOW
        same_n, same_span = HISTORICAL_SAME_CONTRACT
        while self.log and self.log[0][0] <= now - window:
            self.log.popleft()
        waits = [0.0]
        identical = [t for t, k, _ in self.log if k == key]
        if identical:
            waits.append(identical[-1] + HISTORICAL_IDENTICAL_GAP - now)
        same = [t for t, _, c in self.log if c == con_id and t > now - same_span]
        if len(same) >= same_n:
            waits.append(same[-same_n] + same_span - now)
        if len(self.log) >= window_n:
            waits.append(self.log[-window_n][0] + window - now)
        return max(waits)

    async def acquire(self, key: str, con_id: int) -> float:
        """Wait until the request may go and count it; returns the seconds waited."""
        waited = 0.0
        async with self._lock:
            while (wait := self.delay(key, con_id, self.clock())) > 0:
                waited += wait
                await asyncio.sleep(wait)
            self.log.append((self.clock(), key, con_id))
        if waited:
            logger.info("historical request held {:.1f} s to keep within IBKR's pacing rules", waited)
        return waited


@dataclass
class GatewayBudget:
    """The request budget every gatewatch client of one Gateway shares."""

    pacer: RequestPacer = field(default_factory=RequestPacer)
    historical: HistoricalPacer = field(default_factory=HistoricalPacer)


_BUDGETS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, int], GatewayBudget]] = (
    weakref.WeakKeyDictionary()
)


def gateway_budget(host: str, port: int) -> GatewayBudget:
    """The one budget for the Gateway at host:port in this process (per event loop: its locks)."""
    budgets = _BUDGETS.setdefault(asyncio.get_running_loop(), {})
    return budgets.setdefault((host.lower(), port), GatewayBudget())


def historical_key(*parts: object) -> str:
    """What makes two historical requests identical for IBKR's 15-second rule."""
    return "|".join(str(p) for p in parts)


def is_pacing_error(code: int, message: str) -> bool:
    """Whether a Gateway error is a pacing violation.

    Why the text matters: 162 is the Historical Market Data Service's code for everything it
    answers, "Historical data request pacing violation" as well as "HMDS query returned no data"
    (an empty window: a weekend, the night) and cancelled queries. Only the first is pacing; backing
    off and retrying the others only repeats the question (and then trips the identical-request rule).
    """
    return code == 100 or (code == 162 and "pacing violation" in message.lower())


class PacingGovernor:
    """Listens for pacing errors, pauses paced requests, retries requests hit by them."""

    def __init__(
        self,
        ib: IB,
        *,
        backoff_base: float = 2.0,
        metrics: ProbeState | None = None,
        pacer: RequestPacer | None = None,
        historical: HistoricalPacer | None = None,
    ) -> None:
        self.ib = ib
        self.backoff_base = backoff_base
        self.metrics = metrics
        self.pacer = pacer or RequestPacer()
        self.historical = historical or HistoricalPacer()
        self.errors_seen: dict[int, int] = {code: 0 for code in PACING_CODES}
        self.backoffs = 0
        self._step = 0
        self._resume_at = 0.0
        ib.errorEvent += self._on_error

    def close(self) -> None:
        self.ib.errorEvent -= self._on_error

    def _on_error(self, req_id: int, code: int, message: str, contract: Contract | None = None) -> None:
        if not is_pacing_error(code, message):
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
