"""`gatewatch evidence --grafana URL` with no Grafana listening says so, not that a dashboard file is bad."""

from __future__ import annotations

import time

from gatewatch.evidence.grafana_snapshot import make_snapshots
from gatewatch.evidence.model import Window
from gatewatch.evidence.prometheus_api import PrometheusClient
from gatewatch.localstack.net import free_port


def test_no_grafana_is_reported_as_unreachable_for_every_dashboard() -> None:
    grafana = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    prometheus = PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout=2)
    now = time.time()
    snapshots = make_snapshots(grafana, prometheus, Window(now - 60, now), timeout=2)
    assert snapshots
    for snapshot in snapshots:
        assert snapshot.error and "unreadable" not in snapshot.error, snapshot
        assert snapshot.error.startswith(f"Grafana unreachable at {grafana}"), snapshot
