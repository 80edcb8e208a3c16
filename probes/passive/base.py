"""Running a passive probe on a schedule, time-boxed, with every outcome recorded.

The outcome path itself (failure type, recorder) is :mod:`probes.outcome`, shared with the active
probes.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from gatewatch.config import GatewatchConfig
from probes.gateway import CurrentTimeRequester, GatewaySession, raise_if_cancelling
from probes.outcome import ProbeFailure, ProbeRecorder
from probes.state import ProbeState


@dataclass
class PassiveContext:
    """Everything a passive probe may use; every passive probe is built from this alone."""

    session: GatewaySession
    config: GatewatchConfig
    requester: CurrentTimeRequester
    state: ProbeState


class Schedule(NamedTuple):
    """How often a probe runs and how long one run may take."""

    interval: float
    timeout: float


class PassiveProbe(Protocol):
    """The shape the exporter schedules: a name, its recorder, a schedule (None: disabled), a run."""

    name: str
    recorder: ProbeRecorder

    def schedule(self) -> Schedule | None: ...

    async def run_once(self) -> None: ...


async def run_periodically(
    recorder: ProbeRecorder,
    interval: float,
    run_once: Callable[[], Awaitable[None]],
    *,
    timeout: float,
    sleep_until: Callable[[float], Awaitable[None]] | None = None,
) -> None:
    """Run ``run_once`` every ``interval`` seconds for ever, time-boxed, recording each outcome.

    Any exception other than cancellation counts as a failure of this probe only: a Gateway fault
    must never end the exporter. The time box is a deadline on the probe's own task (no extra task
    per run, which ``wait_for`` would create).

    After the first run, runs fall on a grid of the loop's clock (multiples of ``interval``), so
    probes whose intervals divide one another wake together in one pass of the event loop instead
    of a few milliseconds apart each; a run that overruns its interval waits for the next point.
    ``sleep_until`` (monotonic time) may let a run wait a little past its point for a wake-up that
    happens anyway (the exporter's: :meth:`probes.gateway.GatewaySession.sleep_until`).
    """
    loop = asyncio.get_running_loop()
    while True:
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                await run_once()
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
        raise_if_cancelling()  # a stop that a request's wait_for swallowed (Python 3.11)
        point = next_grid_point(loop.time(), interval)
        await (asyncio.sleep(point - loop.time()) if sleep_until is None else sleep_until(point))


def next_grid_point(now: float, interval: float) -> float:
    """The first multiple of ``interval`` after ``now`` (at least a millisecond ahead)."""
    point = (math.floor(now / interval) + 1) * interval
    return point if point - now >= 0.001 else point + interval
