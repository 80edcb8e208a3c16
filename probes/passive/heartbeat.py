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
        self.answered_at = -math.inf  # monotonic time of the latest answered time request
        self._previous_run = -math.inf  # monotonic time this probe's previous run started
        self.requester.listeners.append(self._on_sample)

    def schedule(self) -> Schedule:
        return Schedule(self.interval, self.requester.timeout * 2)

    async def run_once(self) -> None:
        previous, self._previous_run = self._previous_run, time.monotonic()
        if not self.session.connected:
            raise ProbeFailure("not connected")
        if self.answered_at > previous:
            return  # a time request answered since the last run (the clock probe's) proves the round trip
        try:
            await self.requester.request()
        except TimeoutError as exc:
            raise ProbeFailure(f"no answer within {self.requester.timeout:g} s") from exc
        self._previous_run = time.monotonic()  # its own answer proves this run, not the next

    def _on_sample(self, sample: TimeSample) -> None:
        self.rtt.observe(sample.rtt)
        self.answered_at = time.monotonic()
