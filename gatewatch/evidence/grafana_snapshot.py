"""Grafana snapshots of the session's dashboards, with the window's data embedded.

Why embed data: a snapshot made through the HTTP API stores only what it is sent. Grafana's own
"Share > Snapshot" sends each panel's query results as ``snapshotData`` (data frames in the
DataFrameJSON form: ``schema`` with fields, ``data`` with value columns); we do the same, from the
same Prometheus queries, so the snapshot shows the session even after Prometheus has dropped it.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from loguru import logger

from gatewatch.evidence.model import Snapshot, Window, iso
from gatewatch.evidence.prometheus_api import PrometheusClient, PrometheusError, choose_step

DEFAULT_DASHBOARDS = Path(__file__).resolve().parents[2] / "grafana" / "dashboards"
SNAPSHOT_EXPIRES_SECONDS = 0
"""0: the snapshot never expires (the evidence should outlive the session)."""

_VARIABLE_RE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def grafana_credential(environ: dict[str, str] | None = None) -> str | tuple[str, str] | None:
    """GRAFANA_TOKEN, else GRAFANA_USER + GRAFANA_PASSWORD, else None (anonymous or URL userinfo)."""
    env = os.environ if environ is None else environ
    if env.get("GRAFANA_TOKEN"):
        return env["GRAFANA_TOKEN"]
    if env.get("GRAFANA_USER") and env.get("GRAFANA_PASSWORD"):
        return env["GRAFANA_USER"], env["GRAFANA_PASSWORD"]
    return None


def iter_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))


def _variables(dashboard: dict[str, Any], window: Window, step: float) -> dict[str, str]:
    values = {
        "__range": f"{max(1, round(window.seconds))}s",
        "__range_s": str(max(1, round(window.seconds))),
        "__interval": f"{step:g}s",
        "__rate_interval": f"{max(60, round(4 * step))}s",
    }
    for variable in dashboard.get("templating", {}).get("list", []):
        current = variable.get("current", {}).get("value")
        if isinstance(current, list):
            current = "|".join(str(v) for v in current if v != "$__all") or ".*"
        if current in (None, "", "$__all"):
            current = ".*"
        values.setdefault(str(variable.get("name")), str(current))
    return values


def substitute(expr: str, variables: dict[str, str]) -> str:
    """Replace Grafana variables ($__range, ${symbol}, ...) with the window's values."""
    return _VARIABLE_RE.sub(lambda m: variables.get(m.group(1) or m.group(2), m.group(0)), expr)


def _legend(template: str, labels: dict[str, str]) -> str:
    if template and template != "__auto":
        return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)
    shown = {k: v for k, v in labels.items() if k != "__name__"}
    name = labels.get("__name__", "")
    return name + ("{" + ", ".join(f'{k}="{v}"' for k, v in sorted(shown.items())) + "}" if shown else "")


def data_frame(
    ref_id: str, labels: dict[str, str], legend: str, points: list[tuple[float, float]], step: float
) -> dict[str, Any]:
    """One series as a DataFrameJSON frame, as Grafana's UI puts in ``snapshotData``."""
    return {
        "schema": {
            "refId": ref_id,
            "name": legend,
            "fields": [
                {
                    "name": "Time",
                    "type": "time",
                    "typeInfo": {"frame": "time.Time"},
                    "config": {"interval": int(step * 1000)},
                },
                {
                    "name": "Value",
                    "type": "number",
                    "typeInfo": {"frame": "float64", "nullable": True},
                    "labels": {k: v for k, v in labels.items() if k != "__name__"},
                    "config": {"displayNameFromDS": legend},
                },
            ],
        },
        "data": {"values": [[int(t * 1000) for t, _ in points], [v if v == v else None for _, v in points]]},
    }


def snapshot_model(dashboard: dict[str, Any], client: PrometheusClient, window: Window) -> dict[str, Any]:
    """A copy of ``dashboard`` set to the window, every query panel carrying its data frames."""
    model = copy.deepcopy(dashboard.get("dashboard", dashboard))
    model.pop("id", None)
    model.pop("uid", None)
    model["time"] = {"from": iso(window.start), "to": iso(window.end)}
    model["refresh"] = ""
    step = choose_step(window.start, window.end)
    variables = _variables(model, window, step)
    for panel in iter_panels(model.get("panels", [])):
        targets = [t for t in panel.get("targets", []) if t.get("expr")]
        if not targets:
            continue
        frames: list[dict[str, Any]] = []
        for index, target in enumerate(targets):
            ref_id = target.get("refId") or chr(ord("A") + index)
            expr = substitute(target["expr"], variables)
            try:
                if target.get("instant") and not target.get("range"):
                    series = [
                        (labels, [(window.end, value)]) for labels, value in client.query(expr, window.end)
                    ]
                else:
                    series = [
                        (s.labels, s.points) for s in client.query_range(expr, window.start, window.end, step)
                    ]
            except PrometheusError as exc:
                logger.warning("panel {!r} query {} failed: {}", panel.get("title"), ref_id, exc)
                continue
            for labels, points in series:
                frames.append(
                    data_frame(ref_id, labels, _legend(target.get("legendFormat", ""), labels), points, step)
                )
        panel["snapshotData"] = frames
    return model


def make_snapshots(
    grafana_url: str,
    client: PrometheusClient,
    window: Window,
    dashboards_dir: Path = DEFAULT_DASHBOARDS,
    environ: dict[str, str] | None = None,
    timeout: float = 15.0,
) -> list[Snapshot]:
    """Snapshot every dashboard in ``dashboards_dir``; errors are recorded, never raised."""
    from grafana_client import GrafanaApi  # imported here: evidence without Grafana does not need it

    api = GrafanaApi.from_url(grafana_url, credential=grafana_credential(environ), timeout=timeout)
    snapshots: list[Snapshot] = []
    files = sorted(dashboards_dir.glob("*.json"))
    if not files:
        return [Snapshot("(none)", error=f"no dashboards found in {dashboards_dir}")]
    unreachable = ""
    for path in files:
        name = path.stem
        if unreachable:
            snapshots.append(Snapshot(name, error=unreachable))
            continue
        try:
            dashboard = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError) as exc:
            snapshots.append(Snapshot(name, error=f"dashboard file unreadable: {exc}"))
            continue
        try:
            model = snapshot_model(dashboard, client, window)
            title = model.get("title", name)
            answer = api.snapshots.create_new_snapshot(
                dashboard=model,
                name=f"{title} {iso(window.start)} to {iso(window.end)}",
                expires=SNAPSHOT_EXPIRES_SECONDS,
            )
            snapshots.append(Snapshot(name, url=str(answer.get("url", ""))))
            logger.info("grafana snapshot of {}: {}", name, answer.get("url"))
        except Exception as exc:  # grafana-client raises its own and niquests' exception types
            text = f"{type(exc).__name__}: {exc}"
            if "Connection" in type(exc).__name__ or "Timeout" in type(exc).__name__:
                unreachable = f"Grafana unreachable at {grafana_url}: {text}"
            logger.warning("grafana snapshot of {} failed: {}", name, unreachable or text)
            snapshots.append(Snapshot(name, error=unreachable or text))
    return snapshots
