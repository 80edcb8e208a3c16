"""A calm rehearsal (nothing goes wrong) must pass every gate with the broker's books clean.

If this fails, the monitor itself produces false alarms: a session on a healthy paper Gateway
would be judged a failure.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support.rehearsal import Scraper, alert_intervals

from gatewatch.localstack.process import REPO_ROOT
from gatewatch.rehearsal.runner import Rehearsal, RehearsalOptions

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not (shutil.which("prometheus") and shutil.which("prometheus-alertmanager")),
                       reason="needs the prometheus and prometheus-alertmanager binaries"),
]


def test_calm_session_passes_with_clean_books(tmp_path: Path) -> None:
    options = RehearsalOptions(duration=50.0, scenario=REPO_ROOT / "scenarios" / "calm.yaml", out_dir=tmp_path,
                               progress_every=10.0)
    with Rehearsal(options) as rehearsal:
        rehearsal.start()
        scraper = Scraper(rehearsal.metrics_url)
        scraper.start()
        rehearsal.play()
        result = rehearsal.finish()
        scrapes = scraper.stop()
        assert rehearsal.prometheus_url is not None
        alerts = alert_intervals(rehearsal.prometheus_url, rehearsal.window_start, rehearsal.window_end)

    assert not scrapes.failures
    assert result.failed_gates == [], f"calm session failed gates {result.failed_gates}; alerts: {sorted(alerts)}"
    assert result.passed is True
    assert alerts == {}, f"a calm session fired alerts (gatewatch's own load must cause none): {sorted(alerts)}"
    assert result.ledger.probe_orders > 0, "the scheduled order probes sent no order"
    assert result.ledger.problems == []
    assert (tmp_path / "evidence" / "verdict.json").is_file()
    assert (tmp_path / "rehearsal.json").is_file()
