"""What the dashboards take from gatewatch's single sources of truth: the gates and the limits.

A gate is defined once, in prometheus/gates.yml, and read by gatewatch.evidence.gates (the evidence
command judges a session with the same reader); every limit is written once, in
prometheus/thresholds.yml (gatewatch.thresholds.THRESHOLDS: .value for a line, .text for words), so
a number changed in its home moves the dashboards with it (the staleness test asks for a rebuild).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
GATES_FILE = ROOT / "prometheus" / "gates.yml"


def load_gates(path: Path = GATES_FILE) -> list[dict[str, Any]]:
    """The session gates in file order, as gatewatch reads them (one reader of gates.yml, limits
    from prometheus/thresholds.yml filled in), as plain mappings."""
    from gatewatch.evidence.gates import load_gates as read_gates

    return [gate.as_mapping() for gate in read_gates(path)]


@dataclass(frozen=True)
class Limits:
    """Threshold lines drawn on panels; each number comes from where gatewatch judges it."""

    quote_stale_after: float
    """Seconds: thresholds.yml quote_stale_after (config repeats it; a test keeps them equal)."""
    clock_skew_max: float
    """Seconds: the clock_in_sync gate's bound."""
    memory_max_bytes: float
    """Bytes: the memory_bounded gate's bound."""


def load_limits(gates: list[dict[str, Any]]) -> Limits:
    """The lines from the limits table (prometheus/thresholds.yml), the numbers the gates judge by."""
    from gatewatch.thresholds import THRESHOLDS

    return Limits(
        quote_stale_after=THRESHOLDS["quote_stale_after"].value,
        clock_skew_max=THRESHOLDS["max_clock_skew"].value,
        memory_max_bytes=THRESHOLDS["memory_limit"].value,
    )
