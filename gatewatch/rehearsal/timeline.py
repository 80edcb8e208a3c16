"""Scenario timelines, compressed or stretched to the rehearsal's duration.

Scenario files (scenarios/*.yaml) are written for a 10-minute rehearsal. A rehearsal of another
length multiplies every ``at`` and ``for`` by ``duration / 10m`` (or by an explicit time scale),
so the same story plays in a 90-second CI run or a 2-hour soak. A ``for`` never shrinks below
:data:`MIN_FAULT_SECONDS`: a fault shorter than the thresholds that judge it (5 s for quotes) plus
a couple of scrapes would be invisible, and an invisible fault proves nothing. Every ``at`` is
then moved :data:`LEAD_IN_SECONDS` later, the time the stack needs to connect.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gatewatch.config import ConfigError
from gatewatch.durations import parse_duration

NOMINAL_SECONDS = 600.0
"""The rehearsal length scenario files are written for (10 minutes)."""

MIN_FAULT_SECONDS = 8.0
"""Thresholds do not scale with the rehearsal (a quote is stale after 5 s in any session), so a
fault shorter than the threshold plus a couple of scrapes could not be judged at all."""

LEAD_IN_SECONDS = 5.0
"""Every scaled ``at`` is moved this much later: the simulator starts playing its timeline at once,
and the exporter needs a few seconds to connect and be scraped before the session window opens."""

_SCALED_FIELDS = ("at", "for")


@dataclass(frozen=True)
class TimedFault:
    """One scenario entry after scaling: when (seconds from simulator start) and what."""

    at: float
    body: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.body.get("fault", "?"))

    @property
    def lasts(self) -> float:
        return float(self.body.get("for", 0.0))

    def describe(self) -> str:
        extras = ", ".join(f"{k}={v}" for k, v in self.body.items() if k not in ("fault", "for"))
        span = f" for {self.lasts:g}s" if "for" in self.body else ""
        return f"{self.name}{span}" + (f" ({extras})" if extras else "")


def time_scale_for(duration_seconds: float, explicit: float | None = None) -> float:
    """The factor applied to scenario times: explicit if given, else duration / 10 minutes."""
    if explicit is not None:
        if explicit <= 0:
            raise ConfigError("--time-scale: must be greater than 0")
        return explicit
    return duration_seconds / NOMINAL_SECONDS


def load_timeline(path: Path, symbols: list[str], scale: float) -> list[TimedFault]:
    """Read, validate (with the simulator's own rules) and scale a scenario file."""
    from simulator.scenario import load_scenario

    try:
        entries = load_scenario(path, symbols)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"--scenario: {exc}") from exc
    scaled: list[TimedFault] = []
    for at, body in entries:
        new_body = dict(body)
        if "for" in new_body:
            new_body["for"] = round(max(MIN_FAULT_SECONDS, parse_duration(new_body["for"]) * scale), 3)
        scaled.append(TimedFault(round(LEAD_IN_SECONDS + at * scale, 3), new_body))
    return scaled


def write_timeline(timeline: list[TimedFault], path: Path) -> Path:
    """Write the scaled timeline in the simulator's scenario format (plain seconds)."""
    items = [{"at": f.at, **f.body} for f in timeline]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# scaled copy written by gatewatch rehearse; times in seconds\n"
                    + yaml.safe_dump(items, sort_keys=False))
    return path


def fired_by(timeline: list[TimedFault], seconds_since_sim_start: float) -> list[TimedFault]:
    """The faults the simulator has injected by now (it plays the timeline from its own start)."""
    return [f for f in timeline if f.at <= seconds_since_sim_start]


def quiet_after(timeline: list[TimedFault]) -> float:
    """When (seconds from simulator start) the last fault ends."""
    return max((f.at + f.lasts for f in timeline), default=0.0)
