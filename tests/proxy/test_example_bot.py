"""The example bot runs through the proxy: quotes, paper round trips, and a reconnect after a cut."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from proxyhelpers import scrape, value, wait_until

from proxy.testing import running_proxy_app
from simulator.testing import SimHandle

BOT = Path(__file__).resolve().parents[2] / "examples" / "bot.py"


def test_example_bot_trades_and_reconnects_through_the_proxy(sim: SimHandle) -> None:
    with running_proxy_app(sim.port) as app:
        bot = subprocess.Popen(
            [sys.executable, str(BOT), "--port", str(app.port), "--client-id", "11", "--symbols", "SPY,QQQ",
             "--order-every", "1", "--max-backoff", "1", "--duration", "30"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            assert wait_until(lambda: value(scrape(app.metrics_port), "gatewatch_bot_orders_filled_total") >= 2, 15)
            req = urllib.request.Request(
                f"http://127.0.0.1:{app.control_port}/faults", data=b'{"fault": "disconnect"}', method="POST"
            )
            urllib.request.urlopen(req, timeout=5).read()
            assert wait_until(lambda: value(scrape(app.metrics_port), "gatewatch_bot_connects_total") >= 2, 15)
            time.sleep(0.5)
            m = scrape(app.metrics_port)
            assert value(m, "gatewatch_bot_connected", client_id="11") == 1
            assert value(m, "gatewatch_bot_subscriptions", symbol="QQQ") == 1  # subscribed again
            assert value(m, "gatewatch_bot_orders_rejected_total") == 0
            assert value(m, "gatewatch_bot_pacing_violations_total") == 0
            assert value(m, "gatewatch_bot_errors_total", **{"class": "pacing"}) == 0
        finally:
            bot.terminate()
            _, err = bot.communicate(timeout=10)
        assert bot.returncode == 0, err.decode()[-2000:]
