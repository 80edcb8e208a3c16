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
import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import ClassVar

from ib_async import IB
from loguru import logger

from gatewatch.config import GatewayConfig
from gatewatch.ib.account import is_managed, the_account
from gatewatch.ib.clock import MIN_SPACING, TimeSource
from gatewatch.ib.clock import TimeSample as TimeSample  # re-exported for the time-sample listeners
from gatewatch.ib.connect import Client, connect

Listener = Callable[[], Awaitable[None] | None]
FAST_RETRY = 1.0
"""Seconds between attempts while the Gateway refuses or does not answer: such an attempt costs a
refused TCP connect or an idle socket, and a short outage should be measured as what it was."""
DATA_SLACK = 0.25
"""Seconds periodic work may wait past its time for the Gateway's next bytes (IB streams quotes
in about quarter-second batches), so that it runs in a wake-up the Gateway causes anyway."""
LOGIN_CODES = frozenset({502, 504})
CLIENT_ID_IN_USE = 326
"""Errors a client gets from a Gateway whose API is not (yet) connected to a logged-in session."""


class GatewayState:
    """What the latest connection attempt (or the live connection) found, as ``gatewatch_gateway_state``."""

    CONNECTED = "connected"
    REFUSED = "refused"  # refused, or closed before saying a word (a forwarder with nothing behind it)
    NOT_ANSWERING = "not_answering"  # the port accepts, the API says nothing (frozen, or starting)
    NOT_LOGGED_IN = "not_logged_in"  # the API answers but has no session: no account, 502/504
    ALL = (CONNECTED, REFUSED, NOT_ANSWERING, NOT_LOGGED_IN)

    HINTS: ClassVar[dict[str, str]] = {
        REFUSED: "connection refused or closed at once (Gateway stopped or restarting, wrong port, or client "
                 "id in use)",
        NOT_ANSWERING: "the port accepts but the Gateway answers nothing (frozen, or still starting)",
        NOT_LOGGED_IN: "the Gateway is up but NOT LOGGED IN (its API answers without an account, or with "
                       "502/504): log in to IB Gateway (IBC settings, two-factor approval)",
    }
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
        self.state = ""  # a GatewayState value once the first attempt is over
        self.account: str = ""
        self.last_error: str = ""
        self.last_inbound = time.monotonic()  # any bytes from the Gateway: the liveness signal
        self.liveness_checks = 0  # times the liveness watch woke to look (none while bytes flow)
        self._watch_timer: asyncio.TimerHandle | None = None
        self._watch_when = math.inf  # when that timer fires (inf: none set)
        self._watch_wake: asyncio.Future[None] | None = None
        self._watch_half = 0.0  # half the liveness limit, set when the watch starts
        # sleep_until's sleepers by due time: probes on one grid point share one slack timer
        self._sleepers: dict[float, tuple[asyncio.TimerHandle, list[asyncio.Future[None]]]] = {}
        self._sleepers_due = math.inf  # the earliest due among them
        self._attempt_heard = False
        self._attempt_codes: set[int] = set()
        self.on_connected: list[Listener] = []
        self.on_disconnected: list[Listener] = []
        self.on_attempt: list[Listener] = []
        self.on_error: list[ErrorListener] = []
        self._lost = asyncio.Event()
        self.first_attempt_done = asyncio.Event()
        self._listener_tasks: set[asyncio.Task[None]] = set()
        self.ib.disconnectedEvent += self._handle_disconnected
        self.ib.errorEvent += self._handle_error
        self.ib.client.conn.hasData += self._on_data

    def _on_data(self, _data: bytes) -> None:
        """Runs on every read from the Gateway's socket: a clock read, a stamp and two comparisons."""
        now = time.monotonic()
        self.last_inbound = now
        self._attempt_heard = True
        if self._watch_when - now < self._watch_half / 2:
            self._arm_watch(now + self._watch_half)  # nothing can be due before then
        if now >= self._sleepers_due:
            for due in [due for due in self._sleepers if due <= now]:
                self._wake_sleepers(due)

    async def sleep_until(self, due: float) -> None:
        """Sleep until ``due`` (monotonic, the loop's clock), then on until the Gateway's next bytes
        arrive, at most :data:`DATA_SLACK` more.

        Why: on a Pi beside a bot, waking an idle process costs more than the probes' pass it runs.
        A streaming Gateway wakes the loop several times a second anyway; the pass rides on the
        first of those wake-ups after its time (the probes that wake together still wake together).
        A quiet Gateway (no streams, or down) costs the pass its own wake-up, ``DATA_SLACK`` late.
        """
        loop = asyncio.get_running_loop()
        wake: asyncio.Future[None] = loop.create_future()
        group = self._sleepers.get(due)
        if group is None:  # the first sleeper for this point: one timer serves all who join it
            group = self._sleepers[due] = (loop.call_at(due + DATA_SLACK, self._wake_sleepers, due), [])
            self._sleepers_due = min(self._sleepers_due, due)
        wakes = group[1]
        wakes.append(wake)
        try:
            await wake
        finally:
            if self._sleepers.get(due) is group:  # cancelled while asleep: the others sleep on
                wakes.remove(wake)
                if not wakes:
                    self._wake_sleepers(due)  # nobody left to wake: drops the point and its timer

    def _wake_sleepers(self, due: float) -> None:
        """End the sleep of everyone due at ``due`` (by inbound bytes, or by its slack timer)."""
        group = self._sleepers.pop(due, None)
        if group is None:
            return
        timer, wakes = group
        timer.cancel()
        for wake in wakes:
            _wake(wake)
        self._sleepers_due = min(self._sleepers, default=math.inf)

    @property
    def liveness_timeout(self) -> float:
        """Seconds without a byte from the Gateway after which it is declared down."""
        return self.config.request_timeout

    async def watch_liveness(self) -> None:
        """Declare a Gateway that stops answering down, by a check nothing else can hold up.

        Any inbound byte proves the Gateway alive (:meth:`_on_data` only stamps the time). The watch
        is one timer, set for the next moment something can be due: half the liveness limit after
        the latest byte, when a quiet line is prodded with a request for the managed accounts
        (answered at once by any live Gateway, no pacing, no shared future or lock with the probes),
        then the limit itself, when a line that stayed silent is dropped, so
        ``gatewatch_gateway_connected`` reads 0 and the reconnect loop takes over. A Gateway that
        goes silent is thus declared down ``liveness_timeout`` seconds after its last byte.

        A streaming Gateway costs no wake-up at all: inbound bytes arrive while the loop is awake
        anyway, and :meth:`_on_data` then pushes the timer to half a limit after them whenever it
        would fire within a quarter limit, so it fires only after a quarter to half a limit of
        silence (on a Pi beside a bot, a wake-up of an idle process costs more than the check).
        """
        half = self._watch_half = max(0.2, self.liveness_timeout / 2)
        prodded_after = -1.0  # the last_inbound stamp a prod was sent after
        while True:
            if not self.connected:
                await asyncio.sleep(half)
                continue
            self.liveness_checks += 1
            now = time.monotonic()
            heard = self.last_inbound
            silent = now - heard
            if silent >= self.liveness_timeout:
                self.drop(f"no answer from the Gateway for {silent:.1f} s")
                continue
            if silent >= half and prodded_after != heard:
                prodded_after = heard
                with contextlib.suppress(Exception):
                    self.ib.client.reqManagedAccts()
            due = heard + (self.liveness_timeout if prodded_after == heard else half)
            await self._watch_until(max(now + 0.05, due))

    async def _watch_until(self, when: float) -> None:
        """Sleep until ``when`` (monotonic, the loop's clock), or later if inbound bytes push the
        timer on (:meth:`_on_data`): they only ever make the next check due later."""
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._watch_wake = wake
        self._arm_watch(when)
        try:
            await wake
        finally:
            self._watch_wake = None
            if self._watch_timer is not None:
                self._watch_timer.cancel()
                self._watch_timer = None
                self._watch_when = math.inf

    def _arm_watch(self, when: float) -> None:
        if self._watch_timer is not None:
            self._watch_timer.cancel()
        self._watch_timer = asyncio.get_running_loop().call_at(when, self._wake_watch)
        self._watch_when = when

    def _wake_watch(self) -> None:
        self._watch_timer = None
        self._watch_when = math.inf
        if self._watch_wake is not None:
            _wake(self._watch_wake)

    @property
    def address(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    def server_version(self) -> int:
        """The API version the Gateway negotiated (0 while disconnected)."""
        return int(self.ib.client.serverVersion() or 0) if self.connected else 0

    async def run(self) -> None:
        """Connect, wait for the loss, reconnect: for ever (cancel to stop), with the liveness watch."""
        watch = asyncio.create_task(self.watch_liveness(), name="gateway-liveness")
        try:
            await self._run()
        finally:
            watch.cancel()
            with contextlib.suppress(BaseException):
                await watch

    async def _run(self) -> None:
        first = True
        while True:
            if not first:
                self._notify(self.on_attempt)
                self.ib.wrapper.reset()  # stale positions, tickers and account values of the lost session
            first = False
            self._attempt_heard = False
            self._attempt_codes = set()
            try:
                await self._connect()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                raise_if_cancelling()
                self.first_attempt_done.set()
                state = self._failed_state(exc)
                # Back off only from a Gateway that answers but is not logged in; an absent or silent
                # one is retried every second (cheap), so a short outage is measured as what it was.
                delay = self.backoff.next_delay() if state == GatewayState.NOT_LOGGED_IN else FAST_RETRY
                self._set_state(state, _describe(exc), delay)
                await asyncio.sleep(delay)
                continue
            raise_if_cancelling()
            self.first_attempt_done.set()
            self.backoff.reset()
            self.last_error = ""
            self._set_state(GatewayState.CONNECTED, "", 0.0)
            await self._lost.wait()
            logger.info("reconnecting to gateway {} in {:.1f} s", self.address, FAST_RETRY / 4)
            await asyncio.sleep(FAST_RETRY / 4)

    def _failed_state(self, exc: BaseException) -> str:
        """Which state a failed attempt shows; "not logged in" only on the Gateway's own word."""
        if isinstance(exc, NotLoggedIn) or self._attempt_codes & LOGIN_CODES:
            return GatewayState.NOT_LOGGED_IN
        if CLIENT_ID_IN_USE in self._attempt_codes or not self._attempt_heard:
            return GatewayState.NOT_ANSWERING if isinstance(exc, TimeoutError) else GatewayState.REFUSED
        return GatewayState.NOT_LOGGED_IN  # the API answered the handshake, then never finished its start

    def _set_state(self, state: str, reason: str, retry_in: float) -> None:
        """Record the state; one log line per change of state or reason, never one per attempt."""
        changed = state != self.state or reason != self.last_error
        self.state = state
        self.last_error = reason
        if not changed or state == GatewayState.CONNECTED:
            return
        hint = GatewayState.HINTS[state]
        if state == GatewayState.NOT_LOGGED_IN:
            logger.error("gateway {}: {} ({}); retrying, next in {:.0f} s", self.address, hint, reason, retry_in)
        else:
            logger.warning("gateway {} unreachable: {} ({}); retrying every {:g} s", self.address, hint, reason,
                           retry_in)

    async def _connect(self) -> None:
        self._lost.clear()
        cfg = self.config
        await connect(self.ib, cfg, Client.EXPORTER, readonly=True)
        accounts = self.ib.managedAccounts()
        if not accounts:  # a logged-in Gateway always names its accounts at the API start
            self.ib.disconnect()
            raise NotLoggedIn("the API started but reported no managed account")
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
        if self.state == GatewayState.CONNECTED:
            self.state = GatewayState.REFUSED  # the Gateway closed the socket; the next attempt says more
        logger.warning("gateway {} disconnected", self.address)
        self._notify(self.on_disconnected)
        self._lost.set()

    def _handle_error(self, req_id: int, code: int, message: str, _contract: object = None) -> None:
        if not self.connected:
            self._attempt_codes.add(code)
        for listener in self.on_error:
            try:
                listener(req_id, code, message)
            except Exception:
                logger.exception("error listener failed on code {}", code)

    def drop(self, reason: str) -> None:
        """Close a connection that is open but no longer answers, so the reconnect loop takes over.

        The loss is handled here and now (not when the socket's close is confirmed, which a frozen
        peer may delay): the state reads down at once.
        """
        if self.connected:
            logger.warning("gateway {} declared down: {}; recycling the connection", self.address, reason)
            self.state = GatewayState.NOT_ANSWERING
            self.last_error = reason
            with contextlib.suppress(Exception):
                self.ib.disconnect()
            self._handle_disconnected()

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


def _wake(wake: asyncio.Future[None]) -> None:
    """End a sleep on ``wake`` (once: a timer and inbound bytes may both try)."""
    if not wake.done():
        wake.set_result(None)


def raise_if_cancelling() -> None:
    """Stop here if this task was asked to stop: Python 3.11's ``asyncio.wait_for`` (two of them
    wrap every connection attempt) hands back the attempt's own result or error instead of the
    cancellation when both land in the same step, and the reconnect loop would go on for ever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def _guarded(awaitable: Awaitable[None]) -> None:
    try:
        await awaitable
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        logger.warning("connection listener failed: {}", _describe(exc))


class NotLoggedIn(ConnectionError):
    """The Gateway completed the API start without what a logged-in Gateway always sends."""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
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

    def __init__(self, session: TimeSource, timeout: float) -> None:
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
