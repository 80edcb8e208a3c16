"""Scheduled active probes inside the exporter: every ``active.interval``, market hours only.

Why inside the exporter: the results become metrics next to the passive probes, so the session
gates and alerts see an order path that broke mid-session. Each run is its own connection on
``gateway.probe_client_id`` (recovery needs the Gateway's replay for that id), and nothing a run
does can raise out of here: a Gateway fault is a failed probe, never a dead exporter.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import Callable, Coroutine
from typing import Any

from loguru import logger

from gatewatch.config import GatewatchConfig
from gatewatch.trading_hours import MarketHours
from probes.active.runner import PROBES, ProbeResult, run_probes, unwind_bound
from probes.state import ProbeState

KIND = "active"
CLEANUP_CLOSERS = ("recovery", "cleanup")
"""Names under which the runner's recovery and clean-up close probe positions (``probe`` label)."""


def publish(metrics: ProbeState, result: ProbeResult) -> None:
    """Record one active probe result on the shared outcome path (the runner logs each result)."""
    metrics.outcomes.recorder(result.name, KIND, log=False).record(
        result.ok, result.duration, "" if result.ok else result.detail)


def initialise_series(metrics: ProbeState) -> None:
    """Create the run and escalation counters at 0 before any run, so the first failure is visible.

    The order_probes_passed gate and the CloseEscalation alert use ``increase()``, which cannot see
    a change in a series whose first sample already holds it.
    """
    for name in PROBES:
        metrics.outcomes.recorder(name, KIND, log=False)
    metrics.init_close_escalations([*PROBES, *CLEANUP_CLOSERS])


MarketOpen = Callable[[dt.datetime], bool]


IsOpen = Callable[[dt.datetime], bool]
MARKET_RECHECK_SECONDS = 30.0
"""While closed, how often the market hours are judged again: the exporter learns the Gateway's
contract hours only once connected, so a first judgement by the calendar must not hold the probes
back for a whole ``active.interval``."""
TaskFactory = Callable[[GatewatchConfig, ProbeState], Coroutine[Any, Any, None]]


async def run_schedule(
    config: GatewatchConfig,
    metrics: ProbeState,
    stop: asyncio.Event,
    *,
    backoff_base: float = 2.0,
    is_open: IsOpen | None = None,
    hours_known: Callable[[], bool] | None = None,
) -> None:
    """Run the active probe set every ``active.interval`` until ``stop`` is set.

    ``is_open`` judges market hours (the exporter passes the instrument's own liquid hours, with
    the NYSE calendar as fallback). ``hours_known`` says whether the Gateway's hours have arrived:
    the first judgement waits for them (at most ``MARKET_RECHECK_SECONDS``), so a Gateway open at
    night is not first reported closed by the calendar. Setting ``stop`` ends the schedule after the probe in flight:
    the run still cleans up what it holds, so stopping never leaves a probe order behind.
    """
    logger.info(
        "active probes scheduled every {:g} s ({})",
        config.active.interval,
        "market hours only" if config.active.market_hours_only else "at all hours",
    )
    initialise_series(metrics)
    was_open: bool | None = None
    is_open = is_open or MarketHours().is_open  # the one market-hours rule (calendar until hours are known)
    wait = config.active.interval
    if hours_known is not None and config.active.market_hours_only:
        deadline = time.monotonic() + MARKET_RECHECK_SECONDS
        while not hours_known() and time.monotonic() < deadline and not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)
    while not stop.is_set():
        now = dt.datetime.now(dt.UTC)
        open_now = not config.active.market_hours_only or is_open(now)
        if open_now != was_open:
            logger.info("active probes {}", "running" if open_now else "paused: market closed")
            was_open = open_now
        if open_now:
            try:
                await run_probes(
                    config,
                    metrics=metrics,
                    backoff_base=backoff_base,
                    on_result=lambda r: publish(metrics, r),
                    stop=stop,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug in a run must not end the exporter
                logger.exception("active probe run crashed: {}", exc)
                for name in PROBES:
                    publish(metrics, ProbeResult(name, False, 0.0, f"run crashed: {exc}"))
        with contextlib.suppress(TimeoutError):
            # closed: look again soon, so the run starts once the Gateway's hours say open
            await asyncio.wait_for(stop.wait(), wait if open_now else min(wait, MARKET_RECHECK_SECONDS))
    logger.info("active probe schedule stopped")


class ActiveSchedule:
    """The schedule as the exporter runs it: a task factory plus the unwind hook its stop calls.

    Why a hook: cancelling the schedule's task abandons the probe in flight where it stands (an
    order working, a position held). On SIGTERM/SIGINT the exporter first awaits :meth:`unwind`,
    which sets the stop event: the probe in flight is cancelled, its orders cancelled and the
    probes' position closed (bounded by :func:`unwind_bound`); only then are the tasks cancelled.
    """

    def __init__(self, is_open: IsOpen | None = None, hours_known: Callable[[], bool] | None = None) -> None:
        self.is_open = is_open
        self.hours_known = hours_known
        self.stop = asyncio.Event()
        self._finished = asyncio.Event()
        self._bound = 0.0
        self._running = False

    def __call__(self, config: GatewatchConfig, metrics: ProbeState) -> Coroutine[Any, Any, None]:
        self._bound = unwind_bound(config)
        return self._run(config, metrics)

    async def _run(self, config: GatewatchConfig, metrics: ProbeState) -> None:
        self._running = True
        try:
            await run_schedule(config, metrics, self.stop, is_open=self.is_open, hours_known=self.hours_known)
        finally:
            self._running = False
            self._finished.set()

    async def unwind(self) -> None:
        """Stop the schedule and wait (at most the unwind bound + 5 s) until its run has cleaned up."""
        self.stop.set()
        if not self._running:
            return
        try:
            await asyncio.wait_for(self._finished.wait(), self._bound + 5)
        except TimeoutError:
            logger.error("active probes not unwound within {:g} s: the next start's recovery finishes it",
                         self._bound + 5)


def exporter_task(hours: MarketHours | None = None) -> ActiveSchedule:
    """The schedule for ``ExporterApp.extra_tasks`` (its ``unwind`` for the exporter's stop).

    ``hours`` judges market hours; the exporter passes its quotes probe's (the contract's liquid
    hours, the NYSE calendar as fallback) so both agree on when the market is open, and the first
    judgement waits for the Gateway's hours.
    """
    if hours is None:
        return ActiveSchedule()
    return ActiveSchedule(hours.is_open, lambda: hours.known)
