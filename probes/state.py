"""Plain state the probes write and the exporter reads at scrape time.

Why plain state: a tick or a probe run should cost a few attribute writes, not a round of labelled
metric updates (each a locked dict lookup in prometheus-client). The exporter's collectors turn
this state into metric families only when Prometheus asks (``exporter.collectors``). Values are
written on the event loop and read from the HTTP thread: every field is one object assignment or
a counter bump, which a reader sees whole.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter

from probes.outcome import ProbeOutcomes

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Resolution of request round trips (heartbeat, historical): 5 ms to the 10 s request ceiling."""
FILL_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
"""Resolution of order fill latency: 50 ms to the 30 s fill timeout."""


class Distribution:
    """Observations counted into fixed upper bounds (a histogram's state, without the metric)."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # per bucket, not cumulative; the last is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    @property
    def count(self) -> int:
        return sum(self.counts)


class ProbeState:
    """What every probe shares: the outcome registry and the order path's counters.

    Passive probes keep their own measurements on themselves; this holds what the active probes
    (and the historical probe's pacing back-offs) count across runs.
    """

    def __init__(self) -> None:
        self.outcomes = ProbeOutcomes()
        self.orders: Counter[str] = Counter()  # by action (buy, sell)
        self.orders_refused: Counter[str] = Counter()  # by guard reason
        self.close_escalations: Counter[str] = Counter()  # by the probe (or clean-up) that closed
        self.pacing_backoffs: Counter[str] = Counter()  # by error code
        self.fill_latency = Distribution(FILL_LATENCY_BUCKETS)
        self.open_orders = 0  # probe orders still open, per the journal
        self.positions = 0  # probe positions still held, per the journal
        self.position_disagreements = 0  # contracts where the journal and the Gateway disagree

    def init_close_escalations(self, probes: list[str]) -> None:
        """Escalation counts at 0 for every probe that may close.

        Why: the CloseEscalation alert uses ``increase()``, which needs a sample before the change
        it measures: a series whose first sample is already 1 shows no increase.
        """
        for probe in probes:
            self.close_escalations.setdefault(probe, 0)
