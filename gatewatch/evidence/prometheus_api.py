"""A minimal client for Prometheus's HTTP query API (/api/v1/query and /api/v1/query_range).

Why the standard library and not a client package: two GET endpoints are all the evidence needs,
and one fewer dependency is one fewer thing to pin on the Raspberry Pi.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any


class PrometheusError(Exception):
    """Prometheus could not be reached or refused a query; the message says which and why."""


@dataclass
class RangeSeries:
    """One series of a range query: labels and (unix time, value) points."""

    labels: dict[str, str]
    points: list[tuple[float, float]]

    def to_json(self) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "points": [[t, v if math.isfinite(v) else str(v)] for t, v in self.points],
        }


def choose_step(start: float, end: float, target_points: int = 450) -> float:
    """A step giving about ``target_points`` points (300-600), never below 1 s."""
    return max(1.0, round((end - start) / target_points, 3))


class PrometheusClient:
    """Instant and range queries against one Prometheus server."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str, params: dict[str, str]) -> Any:
        url = f"{self.base_url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                body = json.loads(exc.read())
            except (ValueError, OSError):
                raise PrometheusError(f"{url}: HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PrometheusError(f"cannot query Prometheus at {self.base_url}: {reason}") from exc
        if body.get("status") != "success":
            raise PrometheusError(f"{body.get('errorType', 'error')}: {body.get('error', 'unknown error')}")
        return body["data"]

    def ready(self) -> bool:
        """True if Prometheus answers its readiness endpoint."""
        try:
            with urllib.request.urlopen(f"{self.base_url}/-/ready", timeout=self.timeout) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts as Prometheus sees them (/api/v1/alerts)."""
        return list(self._get("/api/v1/alerts", {})["alerts"])

    def alertmanagers(self) -> list[str]:
        """URLs of the Alertmanagers Prometheus sends to (/api/v1/alertmanagers, active ones)."""
        return [am["url"] for am in self._get("/api/v1/alertmanagers", {})["activeAlertmanagers"]]

    def query(self, expr: str, at: float) -> list[tuple[dict[str, str], float]]:
        """Instant query at unix time ``at``: [(labels, value)]; a scalar comes back as one series."""
        data = self._get("/api/v1/query", {"query": expr, "time": f"{at:.3f}"})
        kind, result = data["resultType"], data["result"]
        if kind == "vector":
            return [(dict(item["metric"]), float(item["value"][1])) for item in result]
        if kind == "scalar":
            return [({}, float(result[1]))]
        raise PrometheusError(f"expected an instant vector from {expr!r}, got {kind}")

    def build_version(self) -> str:
        """The server's version (/api/v1/status/buildinfo), e.g. ``2.42.0``."""
        return str(self._get("/api/v1/status/buildinfo", {}).get("version", "unknown"))

    def samples(self, selector: str, seconds: float, at: float) -> list[RangeSeries]:
        """The raw samples of ``selector`` in the ``seconds`` before ``at`` (a range-vector query).

        Why raw samples: counting a counter's increments exactly (resets-aware differences)
        needs every sample, not increase()'s extrapolation.
        """
        data = self._get("/api/v1/query", {"query": f"{selector}[{max(1, round(seconds))}s]", "time": f"{at:.3f}"})
        if data["resultType"] != "matrix":
            raise PrometheusError(f"expected a range vector from {selector!r}, got {data['resultType']}")
        return [
            RangeSeries(dict(item["metric"]), [(float(t), float(v)) for t, v in item["values"]])
            for item in data["result"]
        ]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[RangeSeries]:
        """Range query: one :class:`RangeSeries` per series."""
        data = self._get(
            "/api/v1/query_range",
            {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
        )
        return [
            RangeSeries(dict(item["metric"]), [(float(t), float(v)) for t, v in item["values"]])
            for item in data["result"]
        ]
