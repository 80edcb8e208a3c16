"""What every passive probe shares: recording a run and running it on a schedule.

Why a shared recorder: the blackbox-style metrics (``gatewatch_probe_success``, duration, last-run
time, runs by result) must mean the same thing for every probe, and the rule "one log line per state
change" is easiest to keep in one place: a probe that keeps failing logs once, not every interval.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from loguru import logger

from exporter.metrics import Metrics


class ProbeFailure(Exception):
    """A probe ran but found something wrong; the message is the reason shown in logs."""


@dataclass
class ProbeStatus:
    """The last outcome of one probe, as /healthz reports it."""

    success: bool | None = None
    last_run: float | None = None
    reason: str = ""


class ProbeRecorder:
    """Writes one probe's outcomes into the blackbox-style metrics and logs its state changes."""

    def __init__(self, metrics: Metrics, probe: str, kind: str = "passive") -> None:
        self.metrics = metrics
        self.probe = probe
        self.kind = kind
        self.status = ProbeStatus()

    def record(self, success: bool, duration: float, reason: str = "") -> None:
        """Record one run; log only when the outcome (or the failure reason) changes."""
        labels = {"probe": self.probe, "kind": self.kind}
        now = time.time()
        self.metrics.probe_success.labels(**labels).set(1 if success else 0)
        self.metrics.probe_duration.labels(**labels).set(duration)
        self.metrics.probe_last_run.labels(**labels).set(now)
        self.metrics.probe_runs.labels(**labels, result="success" if success else "failure").inc()
        previous = self.status
        if success and previous.success is not True:
            logger.info("probe {} ok", self.probe)
        elif not success and (previous.success is not False or previous.reason != reason):
            logger.warning("probe {} failing: {}", self.probe, reason)
        self.status = ProbeStatus(success=success, last_run=now, reason=reason if not success else "")


async def run_periodically(
    recorder: ProbeRecorder,
    interval: float,
    run_once: Callable[[], Awaitable[None]],
    *,
    timeout: float,
) -> None:
    """Run ``run_once`` every ``interval`` seconds for ever, time-boxed, recording each outcome.

    Any exception other than cancellation counts as a failure of this probe only: a Gateway fault
    must never end the exporter.
    """
    while True:
        started = time.monotonic()
        try:
            await asyncio.wait_for(run_once(), timeout)
        except asyncio.CancelledError:
            raise
        except ProbeFailure as exc:
            recorder.record(False, time.monotonic() - started, str(exc))
        except TimeoutError:
            recorder.record(False, time.monotonic() - started, f"timed out after {timeout:g} s")
        except Exception as exc:
            recorder.record(False, time.monotonic() - started, f"{type(exc).__name__}: {exc}")
        else:
            recorder.record(True, time.monotonic() - started)
        elapsed = time.monotonic() - started
        await asyncio.sleep(max(0.0, interval - elapsed))
