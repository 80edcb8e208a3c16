"""What an evidence run collects: the window, the judged gates, charts, alerts and probe runs.

Why plain dataclasses: the HTML report, the Markdown summary and verdict.json are three views of
the same facts; collecting once and rendering three times keeps them from disagreeing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gatewatch.evidence.bot import BotSummary
from gatewatch.evidence.charts import Chart
from gatewatch.evidence.gates import GateResult, overall_pass
from gatewatch.evidence.prometheus_api import RangeSeries


def iso(ts: float) -> str:
    """Unix seconds as an ISO 8601 UTC string (second resolution)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Window:
    """The judged session: [start, end] in unix seconds."""

    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def to_json(self) -> dict[str, Any]:
        return {"from": iso(self.start), "to": iso(self.end), "seconds": round(self.seconds, 3)}


SESSION_KINDS = {
    "real": "a real paper IB Gateway",
    "simulator": "the gatewatch simulator (not a real Gateway)",
    "rehearsal": "a gatewatch rehearsal against the simulator, with injected faults (not a real Gateway)",
    "unstated": "not stated (give --subject real|simulator): a simulator session looks like a real one",
}
"""What the session watched, in words (``gatewatch evidence --subject``)."""


@dataclass
class Subject:
    """What the evidence is about: the first thing a reader of the bundle must see."""

    account: str = "unknown"
    account_type: str = "unknown"
    gateway: str = "unknown"
    server_version: str = "unknown"
    kind: str = "unstated"
    exporter_version: str = "unknown"
    evidence_version: str = "unknown"
    config_file: str = "(defaults)"
    config_sha256: str = ""
    prometheus: str = ""
    """The Prometheus the data came from, in words."""

    @property
    def kind_text(self) -> str:
        return SESSION_KINDS.get(self.kind, self.kind)

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) pairs for the report's subject block, in reading order."""
        return [
            ("Account", f"{self.account} ({self.account_type})"),
            ("IB Gateway", self.gateway),
            ("Gateway API server version", self.server_version),
            ("What was watched", self.kind_text),
            ("gatewatch version", f"exporter {self.exporter_version}; evidence {self.evidence_version}"),
            ("Configuration", f"{self.config_file}, SHA-256 {self.config_sha256}"),
            ("Data from", self.prometheus),
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "account_type": self.account_type,
            "gateway": self.gateway,
            "server_version": self.server_version,
            "kind": self.kind,
            "kind_text": self.kind_text,
            "gatewatch_version": {"exporter": self.exporter_version, "evidence": self.evidence_version},
            "config": {"file": self.config_file, "sha256": self.config_sha256},
            "prometheus": self.prometheus,
        }


@dataclass
class AlertFiring:
    """One continuous firing interval of one alert."""

    name: str
    severity: str
    start: float
    end: float
    labels: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {
            "alertname": self.name,
            "severity": self.severity,
            "from": iso(self.start),
            "to": iso(self.end),
            "labels": self.labels,
        }


@dataclass
class ProbeSummary:
    """Runs of one probe within the window, and its last result."""

    probe: str
    kind: str
    successes: float = 0.0
    failures: float = 0.0
    last_success: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "probe": self.probe,
            "kind": self.kind,
            "successes": round(self.successes),
            "failures": round(self.failures),
            "last_success": self.last_success,
        }


@dataclass
class Snapshot:
    """A Grafana snapshot made for the window, or why it was not."""

    dashboard: str
    url: str = ""
    error: str = ""


@dataclass
class Evidence:
    """Everything the bundle reports."""

    window: Window
    prometheus_url: str
    generated_at: float
    gates: list[GateResult]
    charts: list[Chart] = field(default_factory=list)
    alerts: list[AlertFiring] = field(default_factory=list)
    probes: list[ProbeSummary] = field(default_factory=list)
    bots: list[BotSummary] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    grafana_note: str = "no Grafana URL given: no snapshots (the bundle is complete without them)"
    notes: list[str] = field(default_factory=list)
    subject: Subject = field(default_factory=Subject)
    test_suites: list[dict[str, Any]] = field(default_factory=list)  # JUnit summaries (evidence.junit)

    @property
    def passed(self) -> bool:
        return overall_pass(self.gates)

    def verdict_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject.to_json(),
            "verdict": "pass" if self.passed else "fail",
            "pass": self.passed,
            "window": self.window.to_json(),
            "generated_at": iso(self.generated_at),
            "prometheus": self.prometheus_url,
            "gates": [g.to_json() for g in self.gates],
            "failed_gates": [g.id for g in self.gates if not g.passed],
            "alerts_fired": [a.to_json() for a in self.alerts],
            "probes": [p.to_json() for p in self.probes],
            "bots": [b.to_json() for b in self.bots],
            "test_suites": [{k: v for k, v in t.items() if k != "cases"} for t in self.test_suites],
            "grafana_snapshots": [
                {"dashboard": s.dashboard, "url": s.url, "error": s.error} for s in self.snapshots
            ],
            "notes": self.notes,
        }


def firing_intervals(series: list[RangeSeries], step: float) -> list[AlertFiring]:
    """Turn ALERTS{alertstate="firing"} range data into intervals (a gap > 2 steps ends one)."""
    intervals: list[AlertFiring] = []
    for item in series:
        labels = {k: v for k, v in item.labels.items() if k not in ("__name__", "alertstate")}
        name = labels.pop("alertname", "?")
        severity = labels.pop("severity", "")
        current: AlertFiring | None = None
        for t, _ in item.points:
            if current is not None and t - current.end <= 2 * step + 1e-6:
                current.end = t
                continue
            current = AlertFiring(name, severity, t, t, labels)
            intervals.append(current)
    return sorted(intervals, key=lambda a: (a.start, a.name))


def probe_summaries(
    runs: list[tuple[dict[str, str], float]], success: list[tuple[dict[str, str], float]]
) -> list[ProbeSummary]:
    """Join run counts (by probe, kind, result) with the last probe_success value per probe."""
    table: dict[tuple[str, str], ProbeSummary] = {}

    def entry(labels: dict[str, str]) -> ProbeSummary:
        key = (labels.get("probe", "?"), labels.get("kind", "?"))
        return table.setdefault(key, ProbeSummary(*key))

    for labels, value in runs:
        row = entry(labels)
        if labels.get("result") == "failure":
            row.failures += value
        else:
            row.successes += value
    for labels, value in success:
        entry(labels).last_success = value
    return sorted(table.values(), key=lambda p: (p.kind, p.probe))
