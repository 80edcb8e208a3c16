"""How far is this host's clock from IB's? The interval math, once, for preflight and the exporter.

The Gateway answers ``reqCurrentTime`` in whole seconds. An answer S to a request sent at local
time t0 and answered at t1 bounds the offset (host minus IB) to ``[t0 - S - 1, t1 - S]``: the host
read somewhere between t0 and t1 while IB's clock read somewhere in ``[S, S + 1)``. Intersecting
these intervals over samples spaced more than a second apart (the Gateway answers at most one
request per server second) shrinks the interval; aiming each request at the instant the server's
second is predicted to tick over (:meth:`ClockEstimator.next_send_time`) halves it per sample, down
to about the round-trip time.

A sample that contradicts the interval means a clock stepped: the estimate restarts from that
sample alone. (Preflight used to report the union of all its samples instead; the restart won,
because after a step only the newest sample describes the clocks as they are now, and a union
spanning the step would claim a skew that existed at no moment.) The interval also widens slowly
with time so an undisciplined clock's drift is covered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from ib_async import IB

DRIFT_ALLOWANCE = 1e-4
"""Seconds per second the interval widens by, covering an undisciplined host clock's drift."""
MIN_SPACING = 1.1
"""Seconds between two time requests: the Gateway answers at most one per server second."""


@dataclass(frozen=True)
class TimeSample:
    """One answered current-time request: local wall-clock send and receive, server whole second."""

    sent: float
    received: float
    server_seconds: int

    @property
    def rtt(self) -> float:
        return self.received - self.sent


class ClockEstimator:
    """Intersects the offset intervals of successive whole-second time samples."""

    def __init__(self) -> None:
        self.lo = -math.inf
        self.hi = math.inf
        self.updated: float | None = None
        self.resets = 0
        self.samples = 0

    @classmethod
    def of(cls, samples: list[TimeSample]) -> ClockEstimator:
        """An estimator that has folded in ``samples`` in order."""
        estimator = cls()
        for sample in samples:
            estimator.add(sample)
        return estimator

    @property
    def known(self) -> bool:
        return math.isfinite(self.lo) and math.isfinite(self.hi)

    @property
    def skew(self) -> float:
        """The midpoint: the best single estimate of host minus IB (seconds)."""
        return (self.lo + self.hi) / 2

    @property
    def uncertainty(self) -> float:
        """Half the interval's width: the skew is ``skew ± uncertainty``."""
        return (self.hi - self.lo) / 2

    @property
    def worst(self) -> float:
        """The largest absolute skew the interval allows."""
        return max(abs(self.lo), abs(self.hi))

    @property
    def best(self) -> float:
        """The smallest absolute skew the interval allows (0 when it contains 0)."""
        return 0.0 if self.lo <= 0 <= self.hi else min(abs(self.lo), abs(self.hi))

    def add(self, sample: TimeSample) -> bool:
        """Fold in one sample; return False when it contradicted the interval (which then restarts)."""
        lo = sample.sent - sample.server_seconds - 1
        hi = sample.received - sample.server_seconds
        self.samples += 1
        if self.known and self.updated is not None:
            widen = DRIFT_ALLOWANCE * max(0.0, sample.received - self.updated)
            self.lo -= widen
            self.hi += widen
        new_lo, new_hi = max(self.lo, lo), min(self.hi, hi)
        self.updated = sample.received
        if new_lo > new_hi:
            self.lo, self.hi = lo, hi
            self.resets += 1
            return False
        self.lo, self.hi = new_lo, new_hi
        return True

    def next_send_time(self, earliest: float, rtt: float) -> float:
        """The first local time >= earliest at which a request reaches the server as its second ticks
        over, if the offset were the current midpoint (any time once nothing is known yet)."""
        if not self.known:
            return earliest
        phase = (earliest + rtt / 2 - self.skew) % 1.0
        return earliest + (1.0 - phase) % 1.0


class TimeSource(Protocol):
    """A connection the time can be asked over: the exporter's session, or preflight's own."""

    @property
    def connected(self) -> bool: ...

    @property
    def ib(self) -> IB: ...


@dataclass
class OneConnection:
    """A plain connected ``IB`` as a :class:`TimeSource` (preflight's short connection)."""

    ib: IB

    @property
    def connected(self) -> bool:
        return self.ib.isConnected()
