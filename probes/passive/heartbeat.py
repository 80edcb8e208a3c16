"""The heartbeat probe: how fast does the Gateway answer a trivial request?

The round trip of ``reqCurrentTime`` (through the shared, spaced :class:`CurrentTimeRequester`) is
the cheapest end-to-end request there is; its distribution is ``gatewatch_heartbeat_rtt_seconds``.
Whether the Gateway is alive at all is not judged here: the session's liveness watch
(:meth:`probes.gateway.GatewaySession.watch_liveness`) does that without waiting on the time
requester's lock, which the clock probe may hold.
"""

from __future__ import annotations

from probes.gateway import CurrentTimeRequester, GatewaySession
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

    def schedule(self) -> Schedule:
        return Schedule(self.interval, self.requester.timeout * 2)

    async def run_once(self) -> None:
        if not self.session.connected:
            raise ProbeFailure("not connected")
        try:
            sample = await self.requester.request()
        except TimeoutError as exc:
            raise ProbeFailure(f"no answer within {self.requester.timeout:g} s") from exc
        self.rtt.observe(sample.rtt)
