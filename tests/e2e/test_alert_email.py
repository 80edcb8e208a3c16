"""End to end: simulator fault -> exporter -> Prometheus rule -> Alertmanager -> e-mail.

Everything real: the simulated Gateway over TCP, the exporter as its own process (``gatewatch
exporter``), Debian's Prometheus and Alertmanager binaries with the test overlay generated from the
production files (1 s intervals, ``for`` and ``group_wait`` cut to 0), and an aiosmtpd server.

Two phases, so inhibition cannot hide what each one proves:
1. Gateway disconnect: GatewayDown is mailed, then its resolved notice. Quotes grow old during the
   outage, but QuoteStale judges quotes while connected only: it never fires, neither during the
   outage nor after the reconnection while the resubscribed streams start ticking again.
2. SPY frozen: QuoteStale for SPY is mailed, then resolved. QuoteStale only fires while
   gatewatch_market_open == 1; the exporter takes that from the contract's liquid hours, and the
   simulator's open market publishes round-the-clock sessions, so this runs at any hour. (That a
   stale quote in a closed market does not fire is proven by the promtool unit tests.)

The delay from injected disconnect to delivered e-mail is printed (pytest -s) for docs/performance.md.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import promstack

from gatewatch.localstack.net import free_port

ROOT = promstack.ROOT
SYMBOLS = ["SPY", "QQQ", "IWM"]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bool(promstack.binaries_missing()), reason=f"missing: {promstack.binaries_missing()}"),
]

EXPORTER_CONFIG: dict[str, Any] = {
    "gateway": {"host": "127.0.0.1", "connect_timeout": 2, "request_timeout": 1.5,
                "reconnect_initial": 0.2, "reconnect_max": 0.5, "reconnect_jitter": 0.1},
    "probes": {"symbols": SYMBOLS, "heartbeat_interval": 1, "clock_interval": 1.2, "account_interval": 1,
               "process_interval": 1, "historical": {"enabled": False}},
    "active": {"enabled": False},
}


@dataclass
class Stack:
    sim: Any
    prometheus: promstack.Prometheus
    alertmanager: promstack.Alertmanager
    sink: promstack.SmtpSink

    def market_open(self) -> bool:
        return self.prometheus.value("max(gatewatch_market_open)") == 1.0

    def firing(self, alertname: str) -> list[dict[str, Any]]:
        return [a for a in self.prometheus.alerts() if a["labels"]["alertname"] == alertname
                and a["state"] == "firing"]


def _start_exporter(tmp: Path, gateway_port: int) -> tuple[subprocess.Popen[bytes], int]:
    config = {**EXPORTER_CONFIG, "gateway": {**EXPORTER_CONFIG["gateway"], "port": gateway_port}}
    path = tmp / "gatewatch.yaml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    log = (tmp / "exporter.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "gatewatch", "exporter", "--config", str(path),
                                "--listen", f"127.0.0.1:{port}"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"exporter exited: {(tmp / 'exporter.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                return b"gatewatch_gateway_connected 1.0" in r.read()
        except OSError:
            return False

    try:
        promstack.wait_until(ready, 20, "the exporter connected to the simulator")
    except Exception:
        process.terminate()
        raise
    return process, port


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from simulator import running_simulator

    tmp = tmp_path_factory.mktemp("e2e")
    with running_simulator(account="DU1234567", seed=1, symbols=SYMBOLS, tick_hz=4.0, market="open") as sim, \
            promstack.smtp_sink() as sink:
        exporter, exporter_port = _start_exporter(tmp, sim.port)
        try:
            am_config = promstack.render_alertmanager_config(tmp / "am", smtp_port=sink.port)
            with promstack.running_alertmanager(am_config, tmp) as am:
                prom_port = free_port()
                prom_config = promstack.overlay_prometheus_config(
                    tmp / "prom", exporter_target=f"127.0.0.1:{exporter_port}",
                    alertmanager_target=am.address, prometheus_target=f"127.0.0.1:{prom_port}")
                with promstack.running_prometheus(prom_config, tmp, port=prom_port) as prom:
                    prom.wait_for_target_up("gatewatch")
                    prom.wait_for_alertmanager()
                    promstack.wait_until(lambda: prom.value("gatewatch_gateway_connected") == 1.0, 10,
                                         "gatewatch_gateway_connected == 1 in Prometheus")
                    yield Stack(sim, prom, am, sink)
        finally:
            exporter.terminate()
            exporter.wait(timeout=10)


def test_disconnect_mails_gateway_down_then_resolved_and_never_quote_stale(stack: Stack) -> None:
    assert stack.market_open(), "the simulator's open market publishes round-the-clock liquid hours"
    # Long enough for quotes to pass the 5 s limit while disconnected: the old rule fired then, and
    # was still firing, un-inhibited, the moment GatewayDown resolved.
    outage = 9.0
    injected = time.time()
    stack.sim.inject({"fault": "disconnect", "for": f"{outage}s"})

    down = stack.sink.wait_for(lambda m: m.subject.startswith("[gatewatch] FIRING: GatewayDown"), 20,
                               "firing GatewayDown", since=injected)
    delay = down.received_at - injected
    print(f"\nE2E disconnect -> GatewayDown e-mail: {delay:.2f} s (overlay: 1 s scrape/eval, for 0s, group_wait 0s)")
    assert "(critical)" in down.subject
    assert "IB Gateway API connection is down" in down.text
    assert "gatewatch_gateway_connected = 0" in down.text
    assert "docs/runbook.md#gatewaydown" in down.text

    promstack.wait_until(lambda: (stack.prometheus.value("max(gatewatch_quote_age_seconds)") or 0.0) > 5.0,
                         outage, "quotes older than 5 s during the outage")

    resolved = stack.sink.wait_for(lambda m: m.subject.startswith("[gatewatch] RESOLVED: GatewayDown"), 25,
                                   "resolved GatewayDown", since=down.received_at)
    print(f"E2E recovery -> resolved e-mail: {resolved.received_at - injected - outage:.2f} s after the outage ended")
    assert "Until:" in resolved.text
    promstack.wait_until(lambda: (stack.prometheus.value("max(gatewatch_quote_age_seconds)") or 99.0) < 5.0, 10,
                         "quotes ticking again after the reconnection")
    time.sleep(3.0)  # with group_wait 0, a QuoteStale at the reconnection would have been mailed by now
    assert stack.sink.matching(lambda m: "QuoteStale" in m.subject, since=injected) == [], \
        "no QuoteStale mail for an outage, during it or after the reconnection"
    since_injection = f"{time.time() - injected + 2:.0f}s"
    assert stack.prometheus.value(f'max_over_time(ALERTS{{alertname="QuoteStale"}}[{since_injection}])') is None, \
        "QuoteStale was not even pending in Prometheus"


def test_frozen_spy_quote_mails_quote_stale_while_market_open(stack: Stack) -> None:
    promstack.wait_until(lambda: stack.prometheus.value("gatewatch_gateway_connected") == 1.0, 15, "reconnected")
    promstack.wait_until(lambda: not stack.firing("QuoteStale"), 15, "no QuoteStale left from the outage")
    assert stack.market_open()
    injected = time.time()
    stack.sim.inject({"fault": "freeze", "symbol": "SPY", "for": "8s"})
    mail = stack.sink.wait_for(lambda m: m.subject.startswith("[gatewatch] FIRING: QuoteStale"), 15,
                               "firing QuoteStale", since=injected)
    print(f"\nE2E freeze -> QuoteStale e-mail: {mail.received_at - injected:.2f} s (5 s of it is the threshold)")
    assert "SPY" in mail.subject and "QQQ" not in mail.text and "IWM" not in mail.text
    assert "SPY quote is stale while the market is open" in mail.text
    assert "s old (limit 5 s)" in mail.text
    assert "docs/runbook.md#quotestale" in mail.text
    stack.sink.wait_for(lambda m: m.subject.startswith("[gatewatch] RESOLVED: QuoteStale"), 15,
                        "resolved QuoteStale", since=mail.received_at)
