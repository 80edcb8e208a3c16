"""Helpers for the rehearsal tests: a scraper thread and Prometheus range queries."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from gatewatch.evidence.prometheus_api import PrometheusClient
from gatewatch.rehearsal.observe import MetricsSnapshot, scrape


@dataclass
class ScrapeLog:
    """Every scrape of /metrics, every 0.5 s, for the whole run: (unix time, snapshot) or the error."""

    snapshots: list[tuple[float, MetricsSnapshot]] = field(default_factory=list)
    failures: list[tuple[float, str]] = field(default_factory=list)

    def max_of(self, name: str, since: float = 0.0, **labels: str) -> float:
        values = [s.get(name, **labels) for t, s in self.snapshots if t >= since]
        values = [v for v in values if v == v]
        return max(values, default=float("nan"))

    def min_of(self, name: str, since: float = 0.0, **labels: str) -> float:
        values = [s.get(name, **labels) for t, s in self.snapshots if t >= since]
        values = [v for v in values if v == v]
        return min(values, default=float("nan"))

    def total_at_end(self, name: str, **match: str) -> float:
        return self.snapshots[-1][1].total(name, **match)

    def total_before(self, when: float, name: str, **match: str) -> float:
        before = [s for t, s in self.snapshots if t <= when]
        return before[-1].total(name, **match) if before else 0.0


class Scraper(threading.Thread):
    """Scrape a /metrics URL every ``period`` seconds until stopped (timeout per scrape: 2 s)."""

    def __init__(self, url: str, period: float = 0.5) -> None:
        super().__init__(name="scraper", daemon=True)
        self.url = url
        self.period = period
        self.log = ScrapeLog()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            started = time.time()
            try:
                self.log.snapshots.append((started, scrape(self.url, timeout=2.0)))
            except Exception as exc:  # any failure is what the test counts
                self.log.failures.append((started, repr(exc)))
            self._stop_event.wait(max(0.0, self.period - (time.time() - started)))

    def stop(self) -> ScrapeLog:
        self._stop_event.set()
        self.join(5)
        return self.log


def alert_intervals(prometheus_url: str, start: float, end: float) -> dict[str, list[float]]:
    """Per alert name, the times (1 s steps) at which Prometheus had it firing in [start, end]."""
    client = PrometheusClient(prometheus_url)
    series = client.query_range('ALERTS{alertstate="firing"}', start, end, 1.0)
    out: dict[str, list[float]] = {}
    for s in series:
        out.setdefault(s.labels.get("alertname", "?"), []).extend(t for t, v in s.points if v == 1)
    return {name: sorted(times) for name, times in out.items()}
