"""Scenario timelines: a YAML list of faults, each with ``at`` (from simulator start)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from simulator.faults import parse_duration, validate


def load_scenario(path: str | Path, symbols: list[str]) -> list[tuple[float, dict[str, Any]]]:
    """Parse and validate the whole file up front, so a typo fails at start, not an hour in."""
    data = yaml.safe_load(Path(path).read_text())
    if data is None:
        return []
    if not isinstance(data, list):
        raise ValueError(f"{path}: a scenario is a YAML list of {{at: 10s, fault: NAME, ...}} items")
    out: list[tuple[float, dict[str, Any]]] = []
    for n, item in enumerate(data, 1):
        if not isinstance(item, dict) or "at" not in item:
            raise ValueError(f"{path}: item {n} needs an 'at' time, got {item!r}")
        body = {k: v for k, v in item.items() if k != "at"}
        try:
            at = parse_duration(item["at"])
            validate(body, symbols)
        except ValueError as exc:
            raise ValueError(f"{path}: item {n}: {exc}") from None
        out.append((at, body))
    out.sort(key=lambda x: x[0])
    return out
