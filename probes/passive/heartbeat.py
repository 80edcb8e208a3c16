"""The heartbeat probe: does the Gateway answer a trivial request, and how fast?

A connected socket proves little: a hung Gateway keeps the socket open and answers nothing. The
round trip of ``reqCurrentTime`` (through the shared, spaced :class:`CurrentTimeRequester`) is the
cheapest end-to-end check there is. After several unanswered heartbeats in a row the connection is
dropped on purpose so the session's reconnect loop can recover a Gateway that came back.
"""

from __future__ import annotations

from probes.gateway import CurrentTimeRequester, GatewaySession
from probes.outcome import ProbeFailure
from probes.passive.base import PassiveContext, Schedule
from probes.state import LATENCY_BUCKETS, Distribution

DROP_AFTER_MISSES = 3


class HeartbeatProbe:
    """Observes the current-time round trip; success = answered within the request timeout."""

    name = "heartbeat"

    def __init__(self, ctx: PassiveContext) -> None:
        self.session: GatewaySession = ctx.session
        self.requester: CurrentTimeRequester = ctx.requester
        self.interval = ctx.config.probes.heartbeat_interval
        self.recorder = ctx.state.outcomes.recorder(self.name)
        self.rtt = Distribution(LATENCY_BUCKETS)
        self.misses = 0

    def schedule(self) -> Schedule:
        return Schedule(self.interval, self.requester.timeout * 2)

    async def run_once(self) -> None:
        if not self.session.connected:
            self.misses = 0
            raise ProbeFailure("not connected")
        try:
            sample = await self.requester.request()
        except TimeoutError as exc:
            self.misses += 1
            if self.misses >= DROP_AFTER_MISSES:
                self.session.drop(f"{self.misses} heartbeats unanswered")
                self.misses = 0
            raise ProbeFailure(f"no answer within {self.requester.timeout:g} s") from exc
        self.misses = 0
        self.rtt.observe(sample.rtt)
