"""What the dashboards take from gatewatch's single sources of truth: the gates and the limits.

A gate is defined once, in prometheus/gates.yml (the evidence command judges a session from the same
file); the threshold lines drawn on panels are read from there too, or from the configuration, so a
number changed in its home moves the dashboards with it (the staleness test then asks for a rebuild).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .queries import parse_pass_if

ROOT = Path(__file__).resolve().parents[2]
GATES_FILE = ROOT / "prometheus" / "gates.yml"
CONFIG_FILE = ROOT / "config" / "gatewatch.yaml"


def load_gates(path: Path = GATES_FILE) -> list[dict[str, Any]]:
    """The session gates in file order, each checked for the keys a panel needs."""
    gates = yaml.safe_load(path.read_text(encoding="utf-8"))["gates"]
    for gate in gates:
        for key in ("id", "title", "expr", "pass_if"):
            if key not in gate:
                raise ValueError(f"{path}: gate {gate.get('id', '?')}: missing {key!r}")
        if gate.get("no_data", "fail") not in {"pass", "fail"}:
            raise ValueError(f"{path}: gate {gate['id']}: no_data must be pass or fail, got {gate['no_data']!r}")
    return list(gates)


@dataclass(frozen=True)
class Limits:
    """Threshold lines drawn on panels; each number comes from where gatewatch judges it."""

    quote_stale_after: float
    """Seconds: session.quote_stale_after in the example configuration."""
    clock_skew_max: float
    """Seconds: the clock_in_sync gate's bound."""
    memory_max_bytes: float
    """Bytes: the memory_bounded gate's bound."""


def gate_bound(gates: list[dict[str, Any]], gate_id: str) -> float:
    """The number in a gate's ``pass_if`` (the 0.5 of '<= 0.5')."""
    for gate in gates:
        if gate["id"] == gate_id:
            return float(parse_pass_if(gate["pass_if"])[1])
    raise ValueError(f"gates.yml has no gate {gate_id!r}")


def load_limits(gates: list[dict[str, Any]], config_path: Path = CONFIG_FILE) -> Limits:
    from gatewatch.config import load_config

    config = load_config(config_path, environ={})
    return Limits(
        quote_stale_after=config.session.quote_stale_after,
        clock_skew_max=gate_bound(gates, "clock_in_sync"),
        memory_max_bytes=gate_bound(gates, "memory_bounded"),
    )
