"""The clock probe: how far is this host's clock from IB's, to well under a second?

The Gateway only tells whole seconds. Each answer S, for a request sent at local time t0 and
answered at t1, bounds the offset (host minus server) to the interval (t0 - S - 1, t1 - S]. The
intersection of these intervals over many samples shrinks quickly when requests are timed so that
they reach the server near the instant its second ticks over: the probe aims each request at the
boundary predicted by the current midpoint, so every answer cuts the interval roughly in half
(bisection), down to about the round-trip time. The midpoint is the skew, the half-width its
uncertainty. A sample that contradicts the interval (the host or the server clock stepped) starts a
new interval from that sample alone; the interval also widens slowly with time so drift is tracked.

The host's own NTP status is reported beside it (``timedatectl``, else the kernel's adjtimex
STA_UNSYNC flag), since IB time alone cannot say which of the two clocks is wrong.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import shutil
import subprocess
import time

from loguru import logger

from exporter.metrics import Metrics
from probes.gateway import CurrentTimeRequester, GatewaySession, TimeSample
from probes.outcome import ProbeFailure

DRIFT_ALLOWANCE = 1e-4
"""Seconds per second the interval widens by, covering an undisciplined host clock's drift."""
NTP_CHECK_INTERVAL = 60.0


class ClockEstimator:
    """Intersects the offset intervals of successive whole-second time samples."""

    def __init__(self) -> None:
        self.lo = -math.inf
        self.hi = math.inf
        self.updated: float | None = None
        self.resets = 0

    @property
    def known(self) -> bool:
        return math.isfinite(self.lo) and math.isfinite(self.hi)

    @property
    def skew(self) -> float:
        return (self.lo + self.hi) / 2

    @property
    def uncertainty(self) -> float:
        return (self.hi - self.lo) / 2

    def add(self, sample: TimeSample) -> bool:
        """Fold in one sample; return False when it contradicted the interval (which then restarts)."""
        lo = sample.sent - sample.server_seconds - 1
        hi = sample.received - sample.server_seconds
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


def host_ntp_synchronized() -> bool | None:
    """True/False if the host says whether its clock is NTP-synchronised; None if it cannot tell."""
    if shutil.which("timedatectl"):
        try:
            out = subprocess.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
                                 capture_output=True, text=True, timeout=2, check=False)
            if out.returncode == 0 and out.stdout.strip() in ("yes", "no"):
                return out.stdout.strip() == "yes"
        except (OSError, subprocess.SubprocessError):
            pass
    return _adjtimex_synchronized()


class _Timex(ctypes.Structure):
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                ("constant", ctypes.c_long), ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
                ("time_sec", ctypes.c_long), ("time_usec", ctypes.c_long), ("tick", ctypes.c_long),
                ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long), ("shift", ctypes.c_int),
                ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long),
                ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int),
                ("padding", ctypes.c_int * 11)]


STA_UNSYNC = 0x0040
TIME_ERROR = 5


def _adjtimex_synchronized() -> bool | None:
    """Read-only adjtimex (modes=0): unsynchronised if STA_UNSYNC is set or the state is TIME_ERROR."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        timex = _Timex()
        state = libc.adjtimex(ctypes.byref(timex))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return not (timex.status & STA_UNSYNC or state == TIME_ERROR)


class ClockProbe:
    """Schedules boundary-aimed time requests and exports the skew estimate and host NTP status."""

    name = "clock"

    def __init__(self, session: GatewaySession, metrics: Metrics, requester: CurrentTimeRequester,
                 interval: float) -> None:
        self.session = session
        self.metrics = metrics
        self.requester = requester
        self.interval = interval
        self.recorder = metrics.outcomes.recorder(self.name)
        self.estimator = ClockEstimator()
        self.rtt = 0.0
        self._ntp_checked = -math.inf
        requester.listeners.append(self._on_sample)
        session.on_connected.append(self._reset)

    def _reset(self) -> None:
        """A new connection may be a different Gateway (or one whose clock was reset)."""
        self.estimator = ClockEstimator()

    def _on_sample(self, sample: TimeSample) -> None:
        self.rtt = sample.rtt if self.rtt == 0 else 0.8 * self.rtt + 0.2 * sample.rtt
        if not self.estimator.add(sample):
            logger.warning("clock: IB time moved against this host's clock; new skew estimate {:+.3f} s",
                           self.estimator.skew)
        self.metrics.clock_skew.set(self.estimator.skew)
        self.metrics.clock_skew_uncertainty.set(self.estimator.uncertainty)

    def _check_ntp(self) -> None:
        now = time.monotonic()
        if now - self._ntp_checked < NTP_CHECK_INTERVAL:
            return
        self._ntp_checked = now
        synced = host_ntp_synchronized()
        if synced is not None:
            self.metrics.host_ntp_synchronized.set(1 if synced else 0)

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
