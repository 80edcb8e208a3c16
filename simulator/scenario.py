"""Scenario timelines: a YAML list of faults, each with ``at`` (from simulator start)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from gatewatch import safe_yaml  # one YAML loader: duplicate keys, alias bombs, non-UTF-8 refused
from simulator.faults import fault_duration, validate


class ScenarioError(ValueError):
    """A scenario file that cannot be played; the message names the file and the entry."""


def _show(item: object) -> str:
    """One entry as the operator wrote it (flow-style YAML), to point at it in an error."""
    return yaml.safe_dump(item, default_flow_style=True, sort_keys=False).strip()


def load_scenario(path: str | Path, symbols: list[str]) -> list[tuple[float, dict[str, Any]]]:
    """Parse and validate the whole file up front, so a typo fails at start, not an hour in."""
    return load_timeline(path, lambda body: validate(body, symbols))


def load_timeline(
    path: str | Path, check: Callable[[dict[str, Any]], object], *, kind: str = "scenario"
) -> list[tuple[float, dict[str, Any]]]:
    """A YAML list of fault bodies with ``at``, each checked by ``check``; sorted by ``at``.

    One reader for every timeline file (the simulator's, the proxy's): each has its own fault
    catalogue (``check`` raises ValueError naming the problem), the file handling is the same.
    """
    try:
        data = safe_yaml.load_file(path)
    except safe_yaml.YamlFileError as exc:
        raise ScenarioError(f"{kind} file {exc}") from None
    if data is None:
        return []
    if not isinstance(data, list):
        raise ScenarioError(f"{path}: a {kind} is a YAML list of {{at: 10s, fault: NAME, ...}} items")
    out: list[tuple[float, dict[str, Any]]] = []
    for n, item in enumerate(data, 1):
        if not isinstance(item, dict) or "at" not in item:
            raise ScenarioError(f"{path}: item {n} ({_show(item)}) needs an 'at' time")
        body = {k: v for k, v in item.items() if k != "at"}
        try:
            at = fault_duration(item["at"], "at")
            check(body)
        except ValueError as exc:
            raise ScenarioError(f"{path}: item {n} ({_show(item)}): {exc}") from None
        out.append((at, body))
    out.sort(key=lambda x: x[0])
    return out
