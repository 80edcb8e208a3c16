"""The clock probe: how far is this host's clock from IB's, to well under a second?

The interval math (whole-second answers, boundary-aimed requests, restart on a clock step, drift
widening) is :mod:`gatewatch.ib.clock`, shared with preflight; this probe schedules the requests
and keeps the midpoint as the skew and the half-width as its uncertainty.

The host's own NTP status (:mod:`gatewatch.ib.ntp`, as preflight reads it) is reported beside it,
since IB time alone cannot say which of the two clocks is wrong.
"""

from __future__ import annotations

import math
import time

from loguru import logger

from gatewatch.ib.clock import ClockEstimator as ClockEstimator  # re-exported
from gatewatch.ib.clock import TimeSample
from gatewatch.ib.ntp import host_ntp_status
from probes.outcome import ProbeFailure
from probes.passive.base import PassiveContext, Schedule

NTP_CHECK_INTERVAL = 60.0


class ClockProbe:
    """Schedules boundary-aimed time requests; keeps the skew estimate and host NTP status."""

    name = "clock"

    def __init__(self, ctx: PassiveContext) -> None:
        self.session = ctx.session
        self.requester = ctx.requester
        self.interval = ctx.config.probes.clock_interval
        self.recorder = ctx.state.outcomes.recorder(self.name)
        self.estimator = ClockEstimator()
        self.ntp_synchronized: bool | None = None
        self.skew: tuple[float, float] | None = None  # (estimate, uncertainty) after the latest sample
        self.rtt = 0.0
        self._ntp_checked = -math.inf
        self.requester.listeners.append(self._on_sample)
        self.session.on_connected.append(self._reset)

    def schedule(self) -> Schedule:
        return Schedule(self.interval, self.requester.timeout * 2 + self.interval)

    def _reset(self) -> None:
        """A new connection may be a different Gateway (or one whose clock was reset)."""
        self.estimator = ClockEstimator()

    def _on_sample(self, sample: TimeSample) -> None:
        self.rtt = sample.rtt if self.rtt == 0 else 0.8 * self.rtt + 0.2 * sample.rtt
        if not self.estimator.add(sample):
            logger.warning("clock: IB time moved against this host's clock; new skew estimate {:+.3f} s",
                           self.estimator.skew)
        self.skew = (self.estimator.skew, self.estimator.uncertainty)

    def _check_ntp(self) -> None:
        now = time.monotonic()
        if now - self._ntp_checked < NTP_CHECK_INTERVAL:
            return
        self._ntp_checked = now
        self.ntp_synchronized = host_ntp_status().synchronised

    async def run_once(self) -> None:
        self._check_ntp()
        if not self.session.connected:
            raise ProbeFailure("not connected")
        send_at = self.estimator.next_send_time(time.time(), self.rtt)
        try:
            await self.requester.request(not_before=send_at)
        except TimeoutError as exc:
            raise ProbeFailure(f"no time answer within {self.requester.timeout:g} s") from exc
        if not self.estimator.known:
            raise ProbeFailure("no skew estimate yet")
