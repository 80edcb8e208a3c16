"""What the proxy has learnt, per client id: plain counters the decoder bumps and the collector reads.

Why plain attributes and not prometheus-client metrics: the decoder runs for every relayed frame
(tens of thousands a second); an attribute increment costs a fraction of a labelled metric's. The
collector (:mod:`proxy.collector`) turns these into metric families at scrape time, where ages and
windows are computed too.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field

#: Request -> first answer / order latencies (seconds).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: How far back the peak request rate looks (seconds).
RATE_WINDOW = 60


class Histogram:
    """Fixed-bucket histogram (cumulative counts are built at scrape time)."""

    __slots__ = ("count", "counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * len(LATENCY_BUCKETS)
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
        for i, bound in enumerate(LATENCY_BUCKETS):
            if value <= bound:
                self.counts[i] += 1
                break

    def cumulative(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, n in zip(LATENCY_BUCKETS, self.counts, strict=True):
            running += n
            out.append((str(bound), float(running)))
        out.append(("+Inf", float(self.count)))
        return out


@dataclass
class SymbolStats:
    """Market data as the bot receives it for one symbol."""

    name: str
    ticks: int = 0
    last_tick: float = 0.0  # monotonic; 0 = none yet
    subscriptions: int = 0  # live subscriptions of the bot for this symbol


class RateMeter:
    """Messages per whole second; the peak over the last :data:`RATE_WINDOW` seconds."""

    __slots__ = ("_count", "_past", "_second")

    def __init__(self) -> None:
        self._second = 0
        self._count = 0
        self._past: deque[tuple[int, int]] = deque(maxlen=RATE_WINDOW)

    def add(self, n: int, now: float) -> None:
        sec = int(now)
        if sec != self._second:
            if self._count:
                self._past.append((self._second, self._count))
            self._second, self._count = sec, 0
        self._count += n

    def peak(self, now: float) -> int:
        horizon = int(now) - RATE_WINDOW
        best = self._count if self._second > horizon else 0
        for sec, n in list(self._past):
            if sec > horizon and n > best:
                best = n
        return best


@dataclass
class ClientStats:
    """Everything exported for one client id (across its reconnects)."""

    client_id: str
    live: int = 0  # connections of this client id past startApi and not refused (326)
    session_started: float = 0.0  # monotonic start of the current session
    server_version: int = 0
    connects: int = 0
    disconnects: Counter[str] = field(default_factory=Counter)  # by closing side
    collisions: int = 0
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)  # (code, class)
    sent: int = 0
    received: int = 0
    rate: RateMeter = field(default_factory=RateMeter)
    requests: Counter[str] = field(default_factory=Counter)  # by kind
    latency: dict[str, Histogram] = field(default_factory=dict)  # request kind -> first answer
    placed: int = 0
    acknowledged: int = 0
    filled: int = 0
    cancelled: int = 0
    modified: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # by code
    refused: Counter[str] = field(default_factory=Counter)  # by the paper guard, by reason
    ack_latency: Histogram = field(default_factory=Histogram)
    fill_latency: Histogram = field(default_factory=Histogram)
    symbols: dict[str, SymbolStats] = field(default_factory=dict)

    def answered(self, kind: str, since: float, now: float) -> None:
        hist = self.latency.get(kind)
        if hist is None:
            hist = self.latency[kind] = Histogram()
        hist.observe(now - since)

    def session_seconds(self, now: float | None = None) -> float:
        if not self.live:
            return 0.0
        return (time.monotonic() if now is None else now) - self.session_started


@dataclass
class ProxyTotals:
    """Proxy-wide figures not tied to a client id."""

    frames: Counter[str] = field(default_factory=Counter)  # by direction
    undecoded: Counter[tuple[str, str]] = field(default_factory=Counter)  # (direction, reason)
    upstream_failures: int = 0
    refused_connections: int = 0
