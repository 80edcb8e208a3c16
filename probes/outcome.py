"""How every probe, passive or active, reports a run: one failure type, one recorder, one registry.

Why one path: ``gatewatch_probe_success``, its duration, last-run time and runs by result must mean
the same thing for a passive probe and an order probe, and "one log line per state change" is
easiest to keep in one place (a probe that keeps failing logs once, not every interval).

The recorder keeps plain state only; the exporter turns :class:`ProbeOutcomes` into metric
families when it is scraped (``exporter.collectors``). Nothing here imports the exporter.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from loguru import logger


class ProbeFailure(Exception):
    """A probe ran but could not do what it measures; the message is the reason shown in logs."""


@dataclass
class ProbeStatus:
    """The last outcome of one probe, as /healthz reports it."""

    success: bool | None = None
    last_run: float | None = None
    reason: str = ""


class ProbeRecorder:
    """One probe's outcomes: last result, its duration and time, runs by result; logs state changes.

    ``log`` False leaves the logging to the caller (the active runner logs every result itself).
    """

    __slots__ = ("duration", "failures", "kind", "log", "probe", "status", "successes")

    def __init__(self, probe: str, kind: str = "passive", *, log: bool = True) -> None:
        self.probe = probe
        self.kind = kind
        self.log = log
        self.status = ProbeStatus()
        self.duration = 0.0
        self.successes = 0
        self.failures = 0

    def record(self, success: bool, duration: float, reason: str = "") -> None:
        """Record one run; log only when the outcome (or the failure reason) changes."""
        previous = self.status
        if self.log:
            if success and previous.success is not True:
                logger.info("probe {} ok", self.probe)
            elif not success and (previous.success is not False or previous.reason != reason):
                logger.warning("probe {} failing: {}", self.probe, reason)
        self.duration = duration
        if success:
            self.successes += 1
        else:
            self.failures += 1
        # One assignment publishes the new status to a reader on another thread.
        self.status = ProbeStatus(success=success, last_run=time.time(), reason="" if success else reason)


class ProbeOutcomes:
    """The registry of probe recorders, one per (probe, kind), created once and read at scrape time.

    A recorder exists (with zero runs) from the moment it is asked for, so run counters start at 0
    before a probe's first run: ``increase()`` needs a sample before the change it measures.
    """

    def __init__(self) -> None:
        self._recorders: dict[tuple[str, str], ProbeRecorder] = {}

    def recorder(self, probe: str, kind: str = "passive", *, log: bool = True) -> ProbeRecorder:
        """The recorder of ``probe`` (created on first use)."""
        key = (probe, kind)
        found = self._recorders.get(key)
        if found is None:
            found = self._recorders[key] = ProbeRecorder(probe, kind, log=log)
        return found

    def __iter__(self) -> Iterator[ProbeRecorder]:
        return iter(list(self._recorders.values()))  # a copy: the scrape thread reads while probes add
