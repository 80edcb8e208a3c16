"""Reading the running stack: the exporter's /metrics, the simulator's control API, Prometheus.

Why parse the exposition text instead of trusting the exporter's internals: the rehearsal must see
what Prometheus sees. A metric that is set in memory but not served is, for the operator, absent.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from gatewatch.evidence.prometheus_api import PrometheusClient, PrometheusError
from gatewatch.localstack.net import http_get

Sample = tuple[str, tuple[tuple[str, str], ...]]


@dataclass
class MetricsSnapshot:
    """One scrape of /metrics: value by (sample name, sorted labels)."""

    values: dict[Sample, float] = field(default_factory=dict)
    seconds: float = 0.0

    def get(self, name: str, default: float = float("nan"), **labels: str) -> float:
        return self.values.get((name, tuple(sorted(labels.items()))), default)

    def total(self, name: str, **match: str) -> float:
        """Sum of every sample called ``name`` whose labels include ``match``."""
        return sum(v for (n, labels), v in self.values.items()
                   if n == name and all(dict(labels).get(k) == want for k, want in match.items()))

    def series(self, name: str) -> dict[tuple[tuple[str, str], ...], float]:
        return {labels: v for (n, labels), v in self.values.items() if n == name}


def parse_metrics(text: str) -> MetricsSnapshot:
    snapshot = MetricsSnapshot()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            snapshot.values[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return snapshot


def scrape(url: str, timeout: float = 2.0) -> MetricsSnapshot:
    """GET /metrics and parse it; raises OSError or ValueError when that is not possible."""
    started = time.perf_counter()
    status, body = http_get(url, timeout=timeout)
    if status != 200:
        raise OSError(f"{url}: HTTP {status}")
    snapshot = parse_metrics(body.decode())
    snapshot.seconds = time.perf_counter() - started
    return snapshot


def sim_state(control_port: int, timeout: float = 5.0) -> dict[str, Any]:
    """The simulator's own view (orders, executions, positions, faults) via GET /state."""
    status, body = http_get(f"http://127.0.0.1:{control_port}/state", timeout=timeout)
    if status != 200:
        raise OSError(f"simulator control API: HTTP {status}")
    state: dict[str, Any] = json.loads(body)
    return state


def firing_alerts(prometheus_url: str, timeout: float = 2.0) -> list[str]:
    """Names of the alerts firing right now, according to Prometheus (none when it cannot say)."""
    try:
        result = PrometheusClient(prometheus_url, timeout=timeout).query('ALERTS{alertstate="firing"}', time.time())
    except PrometheusError:
        return []
    return sorted({labels.get("alertname", "?") for labels, _ in result})
