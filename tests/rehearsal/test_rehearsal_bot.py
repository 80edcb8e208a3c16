"""The bot's path in a rehearsal: examples/bot.py through gatewatch proxy, faults on the bot's path.

A calm simulator with proxy faults (scenarios/bot-chaos.yaml) must fail exactly the bot gate those
faults break (a frozen symbol: bot_data_fresh) and no other gate, and every bot metric must be in
Prometheus for the example bot. (The calm rehearsal, bot included, passing every gate is
test_rehearsal_calm.py.)
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from gatewatch.evidence.prometheus_api import PrometheusClient
from gatewatch.localstack.process import REPO_ROOT
from gatewatch.rehearsal.runner import Rehearsal, RehearsalOptions

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not (shutil.which("prometheus") and shutil.which("prometheus-alertmanager")),
                       reason="needs the prometheus and prometheus-alertmanager binaries"),
]

BOT_SERIES = [
    "gatewatch_bot_connected", "gatewatch_bot_session_seconds", "gatewatch_bot_server_version",
    "gatewatch_bot_connects_total", "gatewatch_bot_disconnects_total", "gatewatch_bot_errors_total",
    "gatewatch_bot_message_rate_peak", "gatewatch_bot_message_rate_limit", "gatewatch_bot_pacing_violations_total",
    "gatewatch_bot_request_first_answer_seconds_count", "gatewatch_bot_requests_unanswered",
    "gatewatch_bot_orders_placed_total", "gatewatch_bot_orders_acknowledged_total",
    "gatewatch_bot_orders_filled_total", "gatewatch_bot_orders_rejected_total", "gatewatch_bot_orders_refused_total",
    "gatewatch_bot_orders_working", "gatewatch_bot_order_ack_seconds_count",
    "gatewatch_bot_order_first_fill_seconds_count", "gatewatch_bot_ticks_total", "gatewatch_bot_tick_age_seconds",
]


def test_faults_on_the_bots_path_fail_the_bot_gate_they_break(tmp_path: Path) -> None:
    options = RehearsalOptions(duration=60.0, scenario=REPO_ROOT / "scenarios" / "calm.yaml", out_dir=tmp_path,
                               progress_every=15.0, proxy_scenario=REPO_ROOT / "scenarios" / "bot-chaos.yaml")
    with Rehearsal(options) as rehearsal:
        rehearsal.start()
        rehearsal.play()
        result = rehearsal.finish()
        assert rehearsal.prometheus_url is not None
        client = PrometheusClient(rehearsal.prometheus_url)
        now = time.time()
        missing = [name for name in BOT_SERIES
                   if not client.query(f'{name}{{client_id="11",client_name="example-bot"}}', now)]
        placed = client.query('gatewatch_bot_orders_filled_total{client_id="11"}', now)
        disconnects = client.query('gatewatch_bot_disconnects_total{client_id="11",closed_by="proxy"}', now)
    assert not missing, f"bot series not in Prometheus: {missing}"
    assert placed and placed[0][1] >= 1, "the example bot had no order filled"
    assert disconnects and disconnects[0][1] >= 1, "the injected disconnect did not reach the bot"
    assert result.failed_gates == ["bot_data_fresh"], result.failed_gates
    assert result.ledger.problems == []
