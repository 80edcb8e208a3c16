"""The heartbeat probe: how fast does the Gateway answer a trivial request?

The round trip of ``reqCurrentTime`` (through the shared, spaced :class:`CurrentTimeRequester`) is
the cheapest end-to-end request there is; its distribution is ``gatewatch_heartbeat_rtt_seconds``.
Every answered time request counts, the clock probe's included: the heartbeat sends its own only
when no answer arrived since its previous run, so the Gateway is not asked twice for the same proof
(with the shipped intervals the clock probe's request, every 5 s, is the heartbeat's too).
Whether the Gateway is alive at all is not judged here: the session's liveness watch
(:meth:`probes.gateway.GatewaySession.watch_liveness`) does that without waiting on the time
requester's lock, which the clock probe may hold.
"""

from __future__ import annotations

import math
import time
from collections import deque

from probes.gateway import CurrentTimeRequester, GatewaySession, TimeSample
from probes.outcome import ProbeFailure
from probes.passive.base import PassiveContext, Schedule
from probes.state import LATENCY_BUCKETS, Distribution


class HeartbeatProbe:
    """Observes the current-time round trip; success = answered within the request timeout."""

    name = "heartbeat"

    def __init__(self, ctx: PassiveContext) -> None:
        self.session: GatewaySession = ctx.session
        self.requester: CurrentTimeRequester = ctx.requester
        self.interval = ctx.config.probes.heartbeat_interval
        self.recorder = ctx.state.outcomes.recorder(self.name)
        self.rtt = Distribution(LATENCY_BUCKETS)
        self._previous_run = -math.inf  # monotonic time this probe's previous run started
        self._answers: deque[tuple[float, TimeSample]] = deque(maxlen=8)  # (monotonic time, sample)
        self.requester.listeners.append(self._on_sample)

    @property
    def answered_at(self) -> float:
        """Monotonic time of the latest answered time request (-inf before the first)."""
        return self._answers[-1][0] if self._answers else -math.inf

    def schedule(self) -> Schedule:
        return Schedule(self.interval, self.requester.timeout * 2)

    async def run_once(self) -> None:
        started = time.monotonic()
        previous, self._previous_run = self._previous_run, started
        if not self.session.connected:
            raise ProbeFailure("not connected")
        if self.answered_at > previous:
            return  # a time request answered since the last run (the clock probe's) proves the round trip
        try:
            own = await self.requester.request()
        except TimeoutError as exc:
            raise ProbeFailure(f"no answer within {self.requester.timeout:g} s") from exc
        # Its own answer proves this run, not the next. Another probe's answer that arrived while
        # this request waited its turn (the requester sends one at a time, the clock probe's first
        # when both run together) still proves the next, or the heartbeat would ask every run.
        if not any(at > started and sample is not own for at, sample in self._answers):
            self._previous_run = time.monotonic()

    def _on_sample(self, sample: TimeSample) -> None:
        self.rtt.observe(sample.rtt)
        self._answers.append((time.monotonic(), sample))
