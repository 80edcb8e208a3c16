"""The exporter's connection to the IB Gateway: kept up, re-established, and shared safely.

Why this module exists: ib_async has no automatic reconnect, no request timeouts by default, fires
``disconnectedEvent`` twice per loss (2.1.0) and shares one future between concurrent requests of
the same kind. :class:`GatewaySession` turns that into one well-behaved connection: read-only,
its own client id, reconnect driven by the disconnect event (not by polling) with exponential
back-off and jitter, and listeners that other probes hook into. :class:`CurrentTimeRequester`
serialises ``reqCurrentTime``, which the Gateway answers at most once per server second.

Nothing here knows whether the far end is the simulator or a real paper Gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable

from ib_async import IB
from loguru import logger

from gatewatch.config import GatewayConfig
from gatewatch.ib.account import is_managed, the_account
from gatewatch.ib.clock import MIN_SPACING
from gatewatch.ib.clock import TimeSample as TimeSample  # re-exported for the time-sample listeners
from gatewatch.ib.connect import Client, connect

Listener = Callable[[], Awaitable[None] | None]
ErrorListener = Callable[[int, int, str], None]


class Backoff:
    """Exponential back-off with jitter: initial, 2x initial, 4x ... capped at ``maximum``.

    Jitter spreads reconnects of several clients after a Gateway restart; the cap keeps a long
    outage from turning into hour-long silences.
    """

    def __init__(
        self, initial: float, maximum: float, jitter: float, rng: random.Random | None = None
    ) -> None:
        self.initial = initial
        self.maximum = maximum
        self.jitter = jitter
        self._rng = rng or random.Random()
        self._next = initial

    def next_delay(self) -> float:
        """The delay before the next attempt; doubles the one after it."""
        base = min(self._next, self.maximum)
        self._next = min(self._next * 2, self.maximum)
        spread = base * self.jitter
        return max(0.05, base + self._rng.uniform(-spread, spread))

    def reset(self) -> None:
        """Start again from the initial delay (after a successful connection)."""
        self._next = self.initial


class GatewaySession:
    """One read-only API connection to the Gateway, re-established for as long as it runs."""

    def __init__(self, config: GatewayConfig, *, rng: random.Random | None = None) -> None:
        self.config = config
        self.ib = IB()
        self.ib.RequestTimeout = config.request_timeout
        self.ib.RaiseRequestErrors = True
        self.backoff = Backoff(config.reconnect_initial, config.reconnect_max, config.reconnect_jitter, rng)
        self.connected = False
        self.connected_since: float | None = None
        self.account: str = ""
        self.last_error: str = ""
        self.on_connected: list[Listener] = []
        self.on_disconnected: list[Listener] = []
        self.on_attempt: list[Listener] = []
        self.on_error: list[ErrorListener] = []
        self._lost = asyncio.Event()
        self.first_attempt_done = asyncio.Event()
        self._listener_tasks: set[asyncio.Task[None]] = set()
        self.ib.disconnectedEvent += self._handle_disconnected
        self.ib.errorEvent += self._handle_error

    @property
    def address(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    def server_version(self) -> int:
        """The API version the Gateway negotiated (0 while disconnected)."""
        return int(self.ib.client.serverVersion() or 0) if self.connected else 0

    async def run(self) -> None:
        """Connect, wait for the loss, back off, reconnect: for ever (cancel to stop)."""
        first = True
        while True:
            if not first:
                self._notify(self.on_attempt)
                self.ib.wrapper.reset()  # stale positions, tickers and account values of the lost session
            first = False
            try:
                await self._connect()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.first_attempt_done.set()
                reason = _describe(exc)
                delay = self.backoff.next_delay()
                if reason != self.last_error:
                    logger.warning("gateway {} unreachable: {}; retrying with back-off", self.address, reason)
                    self.last_error = reason
                logger.debug("next connection attempt in {:.1f} s", delay)
                await asyncio.sleep(delay)
                continue
            self.first_attempt_done.set()
            self.backoff.reset()
            self.last_error = ""
            await self._lost.wait()
            delay = self.backoff.next_delay()
            logger.info("reconnecting to gateway {} in {:.1f} s", self.address, delay)
            await asyncio.sleep(delay)

    async def _connect(self) -> None:
        self._lost.clear()
        cfg = self.config
        await connect(self.ib, cfg, Client.EXPORTER, readonly=True)
        accounts = self.ib.managedAccounts()
        self.account = the_account(cfg.account, accounts)
        if cfg.account and not is_managed(cfg.account, accounts):
            logger.error("configured account {} is not managed by this Gateway (it manages {})",
                         cfg.account, ", ".join(accounts) or "none")
        self.connected = True
        self.connected_since = time.time()
        logger.info("gateway {} connected: server version {}, account {}, client id {}",
                    self.address, self.server_version(), self.account or "?", cfg.client_id)
        self._notify(self.on_connected)

    def _handle_disconnected(self) -> None:
        """Idempotent: ib_async 2.1.0 emits disconnectedEvent twice for one loss."""
        if not self.connected:
            self._lost.set()
            return
        self.connected = False
        self.connected_since = None
        logger.warning("gateway {} disconnected", self.address)
        self._notify(self.on_disconnected)
        self._lost.set()

    def _handle_error(self, req_id: int, code: int, message: str, _contract: object = None) -> None:
        for listener in self.on_error:
            try:
                listener(req_id, code, message)
            except Exception:
                logger.exception("error listener failed on code {}", code)

    def drop(self, reason: str) -> None:
        """Close a connection that is open but no longer answers, so the reconnect loop takes over."""
        if self.connected:
            logger.warning("dropping unresponsive gateway connection: {}", reason)
            self.ib.disconnect()

    def close(self) -> None:
        """Disconnect for good (shutdown)."""
        self.ib.disconnectedEvent -= self._handle_disconnected
        self.connected = False
        with contextlib.suppress(Exception):
            self.ib.disconnect()

    def _notify(self, listeners: list[Listener]) -> None:
        for listener in listeners:
            try:
                result = listener()
            except Exception:
                logger.exception("connection listener failed")
                continue
            if result is not None:
                task = asyncio.ensure_future(_guarded(result))
                self._listener_tasks.add(task)
                task.add_done_callback(self._listener_tasks.discard)


async def _guarded(awaitable: Awaitable[None]) -> None:
    try:
        await awaitable
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        logger.warning("connection listener failed: {}", _describe(exc))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out (Gateway silent, client id in use, or not logged in)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listening)"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class CurrentTimeRequester:
    """The one way gatewatch asks the Gateway for the time.

    The Gateway answers ``reqCurrentTime`` at most once per server second and never a second request
    within the same second; ib_async has no timeout and shares one future between overlapping
    requests. Hence: one request at a time, sends spaced more than a second apart, every wait bounded.
    """

    MIN_SPACING = MIN_SPACING

    def __init__(self, session: GatewaySession, timeout: float) -> None:
        self.session = session
        self.timeout = timeout
        self.listeners: list[Callable[[TimeSample], None]] = []
        self._lock = asyncio.Lock()
        self._last_sent_monotonic = -1e9

    async def request(self, not_before: float | None = None) -> TimeSample:
        """Ask for the server time, no earlier than wall time ``not_before``; raise TimeoutError."""
        async with self._lock:
            wait = self._last_sent_monotonic + self.MIN_SPACING - time.monotonic()
            if not_before is not None:
                wait = max(wait, not_before - time.time())
            if wait > 0:
                await asyncio.sleep(wait)
            if not self.session.connected:
                raise ConnectionError("gateway not connected")
            self._last_sent_monotonic = time.monotonic()
            sent = time.time()
            answer = await asyncio.wait_for(self.session.ib.reqCurrentTimeAsync(), self.timeout)
            received = time.time()
        sample = TimeSample(sent, received, int(answer.timestamp()))
        for listener in self.listeners:
            try:
                listener(sample)
            except Exception:
                logger.exception("time-sample listener failed")
        return sample
