"""gatewatch's Grafana dashboards, generated with Grafana's typed builders (grafana-foundation-sdk).

Layout: :mod:`queries` holds every PromQL expression, :mod:`panels` the typed panel factories,
:mod:`layout` where each panel sits, :mod:`sources` the gates and limits read from their homes.
To add a dashboard: write its queries in :mod:`queries`, a function in :mod:`layout` (or a module of
its own) taking :class:`layout.Sources`, and one entry in :data:`DASHBOARDS`. Then run
``python grafana/build_dashboards.py`` and commit the JSON (tests/stack/test_dashboards.py fails on a
stale file and runs every query against a real Prometheus).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from .layout import ALLOW_EMPTY, Sources, bot_dashboard, probe_dashboard, session_dashboard
from .sources import load_gates, load_limits

DASHBOARDS: dict[str, Callable[[Sources], dict[str, Any]]] = {
    "session.json": session_dashboard,
    "probes.json": probe_dashboard,
    "bot.json": bot_dashboard,
}
"""File name under grafana/dashboards/ -> the function building that dashboard."""

__all__ = ["ALLOW_EMPTY", "DASHBOARDS", "build", "iter_targets", "load_gates", "render_json"]


def build() -> dict[str, dict[str, Any]]:
    """File name -> dashboard model, for every dashboard gatewatch ships."""
    gates = load_gates()
    src = Sources(gates=gates, limits=load_limits(gates))
    return {name: make(src) for name, make in DASHBOARDS.items()}


def render_json(model: dict[str, Any]) -> str:
    return json.dumps(model, indent=2, sort_keys=False, allow_nan=False) + "\n"


def iter_targets(model: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(panel, target) pairs of a dashboard, rows skipped."""
    for panel in model["panels"]:
        for tgt in panel.get("targets", []):
            yield panel, tgt
