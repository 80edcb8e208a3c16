"""A compressed chaos rehearsal (2 minutes): the exporter survives everything and tells the truth.

One rehearsal runs for the whole module (real simulator, exporter, Prometheus, Alertmanager, SMTP
sink); each test checks one promise against what was recorded.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.rehearsal import ScrapeLog, Scraper, alert_intervals

from gatewatch.localstack.process import REPO_ROOT
from gatewatch.rehearsal.runner import Rehearsal, RehearsalOptions, RehearsalResult
from gatewatch.rehearsal.timeline import TimedFault
from probes.active.journal import Journal

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not (shutil.which("prometheus") and shutil.which("prometheus-alertmanager")),
                       reason="needs the prometheus and prometheus-alertmanager binaries"),
]

DURATION = 120.0


@dataclass
class ChaosRun:
    result: RehearsalResult
    scrapes: ScrapeLog
    alerts: dict[str, list[float]]
    state: dict[str, Any]
    journal_rows: list[Any]
    fault_times: dict[str, float]
    timeline: list[TimedFault]
    window: tuple[float, float]


@pytest.fixture(scope="module")
def chaos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosRun]:
    out: Path = tmp_path_factory.mktemp("chaos")
    options = RehearsalOptions(duration=DURATION, scenario=REPO_ROOT / "scenarios" / "chaos.yaml", out_dir=out,
                               progress_every=10.0)
    with Rehearsal(options) as rehearsal:
        rehearsal.start()
        scraper = Scraper(rehearsal.metrics_url, period=0.5)
        scraper.start()
        rehearsal.play()
        result = rehearsal.finish()
        scrapes = scraper.stop()
        assert rehearsal.prometheus_url is not None and rehearsal.sim is not None
        alerts = alert_intervals(rehearsal.prometheus_url, rehearsal.window_start, time.time())
        state = rehearsal.sim_state()
        journal = Journal(rehearsal.journal_path)
        rows = journal.all_orders()
        journal.close()
        sim_start = rehearsal.sim.started_at
        fault_times: dict[str, float] = {}
        for fault in rehearsal.timeline:
            fault_times.setdefault(fault.name, sim_start + fault.at)
        yield ChaosRun(result, scrapes, alerts, state, rows, fault_times, rehearsal.timeline,
                       (rehearsal.window_start, rehearsal.window_end))


def test_every_fault_of_the_scenario_fired(chaos: ChaosRun) -> None:
    assert len(chaos.result.faults_fired) == len(chaos.timeline) >= 14


def test_metrics_were_served_throughout(chaos: ChaosRun) -> None:
    expected = DURATION / 0.5
    assert not chaos.scrapes.failures, f"failed scrapes: {chaos.scrapes.failures[:5]}"
    assert len(chaos.scrapes.snapshots) >= 0.8 * expected


def test_every_fault_is_visible_in_the_metrics(chaos: ChaosRun) -> None:
    log, at = chaos.scrapes, chaos.fault_times
    seen = {
        "disconnect": log.min_of("gatewatch_gateway_connected", since=at["disconnect"]) == 0
        and log.total_at_end("gatewatch_gateway_disconnects_total")
        > log.total_before(at["disconnect"], "gatewatch_gateway_disconnects_total"),
        "connectivity_lost": log.max_of("gatewatch_gateway_connectivity_lost", since=at["connectivity_lost"]) == 1,
        "stall": log.max_of("gatewatch_quote_age_seconds", since=at["stall"], symbol="IWM") > 5,
        "competing_session": log.max_of("gatewatch_gateway_competing_session", since=at["competing_session"]) == 1,
        "freeze": log.max_of("gatewatch_quote_age_seconds", since=at["freeze"], symbol="SPY") > 5,
        "drop_bid_ask": log.min_of("gatewatch_quote_sane", since=at["drop_bid_ask"], symbol="QQQ") == 0,
        "pacing": log.total_at_end("gatewatch_api_errors_total", code="100")
        > log.total_before(at["pacing"], "gatewatch_api_errors_total", code="100"),
        "historical_pacing": log.total_at_end("gatewatch_api_errors_total", code="162")
        > log.total_before(at["historical_pacing"], "gatewatch_api_errors_total", code="162"),
        "clock_shift": log.max_of("gatewatch_clock_skew_seconds", since=at["clock_shift"]) < -0.5
        or log.max_of("gatewatch_clock_skew_seconds", since=at["clock_shift"]) > 0.5
        or log.min_of("gatewatch_clock_skew_seconds", since=at["clock_shift"]) < -0.5,
        "reject_next_order": log.total_at_end("gatewatch_probe_runs_total", kind="active", result="failure")
        > log.total_before(at["reject_next_order"], "gatewatch_probe_runs_total", kind="active", result="failure"),
        "manual_trade": max(abs(log.max_of("gatewatch_position_drift", since=at["manual_trade"], symbol="SPY",
                                           source="ledger")),
                            abs(log.min_of("gatewatch_position_drift", since=at["manual_trade"], symbol="SPY",
                                           source="ledger"))) >= 3,
    }
    missing = sorted(name for name, ok in seen.items() if not ok)
    assert not missing, f"faults not visible in /metrics: {missing}"


ALERTS_THAT_MUST_FIRE_AND_RESOLVE = ("GatewayDown", "CompetingSession", "QuoteStale", "QuoteIncomplete",
                                     "ClockSkewHigh", "ReconciliationDrift")


@pytest.mark.parametrize("alert", ALERTS_THAT_MUST_FIRE_AND_RESOLVE)
def test_alert_fires_and_resolves(chaos: ChaosRun, alert: str) -> None:
    times = chaos.alerts.get(alert, [])
    assert times, f"{alert} never fired; fired: {sorted(chaos.alerts)}"
    assert times[-1] < chaos.window[1] - 1, f"{alert} still firing at the end of the run"


def test_alerts_reached_the_operator_by_mail(chaos: ChaosRun) -> None:
    assert chaos.result.mails >= 2


def test_no_probe_order_open_and_no_probe_position_held_at_the_broker(chaos: ChaosRun) -> None:
    assert chaos.result.ledger.open_probe_orders == []
    assert chaos.result.ledger.probe_positions == {}


def test_no_order_was_sent_twice(chaos: ChaosRun) -> None:
    ledger = chaos.result.ledger
    assert ledger.probe_orders > 0
    assert ledger.duplicate_refs == []
    assert ledger.unjournalled_refs == []
    intents = [(row.order_ref, row.action) for row in chaos.journal_rows]
    assert len(intents) == len(set(intents))
    sent_at_broker = [o for o in chaos.state["orders"]
                      if str(o.get("orderRef", "")).startswith("gatewatch") and not o.get("whatIf")]
    assert len(sent_at_broker) <= len(chaos.journal_rows)


def test_verdict_fails_and_names_the_broken_gates(chaos: ChaosRun) -> None:
    assert chaos.result.passed is False
    expected = {"gateway_connected", "no_disconnects", "ib_link_held", "quotes_fresh", "quotes_complete",
                "clock_in_sync", "positions_reconciled", "order_probes_passed", "no_critical_alerts"}
    missing = expected - set(chaos.result.failed_gates)
    assert not missing, f"gates that should have failed but did not: {sorted(missing)}"
    assert {"exporter_scraped", "window_length", "memory_bounded"}.isdisjoint(chaos.result.failed_gates)
