"""The configuration a rehearsal generates: gatewatch's, Prometheus's and Alertmanager's.

Why generated and not the files in the repo as they are: a rehearsal compresses a 2-hour session
into minutes, so probe intervals, scrape and evaluation intervals, alert ``for:`` durations and
Alertmanager group timings shrink with it, and every port is a free loopback port. Prometheus's and
Alertmanager's files are rendered from the shipped ones by :mod:`gatewatch.localstack.configs`
(thresholds, rule expressions, routes, inhibit rules, e-mail templates unchanged), so the rehearsal
tests what the operator will run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gatewatch.config import GatewatchConfig, load_config
from gatewatch.localstack.configs import (
    Timing,
    local_smtp_settings,
    render_alertmanager_config,
    render_prometheus_config,
)

EXAMPLE_BOT_CLIENT_ID = 11
"""The example bot's client id in a rehearsal (examples/bot.py through gatewatch proxy)."""
MIN_ALERT_FOR_SECONDS = 2.0
"""A compressed ``for:`` stays at least this long: one noisy sample must still not fire an alert."""


@dataclass(frozen=True)
class Ports:
    """Every loopback port one rehearsal uses."""

    gateway: int
    control: int
    exporter: int
    prometheus: int
    alertmanager: int
    smtp: int
    proxy: int = 0  # the bot connects here (gatewatch proxy)
    proxy_metrics: int = 0
    proxy_control: int = 0


def active_interval_for(duration_seconds: float) -> float:
    """About eight scheduled probe runs per rehearsal, 10 s to 10 min apart."""
    return min(600.0, max(10.0, duration_seconds / 8))


def scrape_interval_for(duration_seconds: float) -> float:
    """1 s scrapes for short rehearsals (so a 2-second fault is seen), 5 s for long ones."""
    return 1.0 if duration_seconds <= 1800 else 5.0


def gatewatch_config(base: Path | None, ports: Ports, duration_seconds: float, out_dir: Path,
                     symbols: list[str], account: str) -> GatewatchConfig:
    """The operator's configuration (or the defaults) pointed at the simulator and compressed.

    The paper-port list is set to the simulator's port so the active probes' guard (paper account,
    paper flag, paper port) passes for the right reason: the target really is the simulator.
    """
    # the environment does not choose the Gateway: a rehearsal only ever watches its own simulator
    config = load_config(base, environ={}) if base is not None else GatewatchConfig()
    interval = active_interval_for(duration_seconds)
    data = config.model_dump(mode="json")
    data["gateway"].update(host="127.0.0.1", port=ports.gateway, paper=True, paper_ports=[ports.gateway],
                           account=account, connect_timeout=5.0, request_timeout=5.0,
                           reconnect_initial=0.5, reconnect_max=5.0)
    data["exporter"].update(listen=f"127.0.0.1:{ports.exporter}")
    data["proxy"].update(listen=f"127.0.0.1:{ports.proxy}", metrics_listen=f"127.0.0.1:{ports.proxy_metrics}",
                         control_port=ports.proxy_control, upstream=None, paper_only=True,
                         client_names={**data["proxy"]["client_names"], EXAMPLE_BOT_CLIENT_ID: "example-bot"})
    data["probes"].update(symbols=symbols, bot_positions_file=None, processes=[],
                          reconciliation_interval=min(float(data["probes"]["reconciliation_interval"]),
                                                      max(2.0, duration_seconds / 30)))
    data["probes"]["historical"].update(interval=15.0)  # IBKR's minimum spacing for identical requests
    data["active"].update(
        enabled=True,
        market_hours_only=False,
        interval=interval,
        journal_path=str(out_dir / "probe-journal.sqlite"),
        # a compressed session runs probes far more often than 60 orders an hour allows
        max_orders_per_hour=max(60, math.ceil(3600 / interval) * 8),
        stream_test_duration=min(float(data["active"]["stream_test_duration"]), max(2.0, interval / 4)),
        fill_timeout=min(float(data["active"]["fill_timeout"]), 10.0),
        cancel_timeout=min(float(data["active"]["cancel_timeout"]), 5.0),
        close_retry_wait=min(float(data["active"]["close_retry_wait"]), 1.0),
    )
    data["session"].update(required_duration=duration_seconds)
    data["preflight"].update(require_market_open=False)
    return GatewatchConfig.model_validate(data)


def write_gatewatch_config(config: GatewatchConfig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    return path


def timing_for(scale: float, duration_seconds: float) -> Timing:
    """The overlay a rehearsal runs the shipped rules and routes with: time compressed by ``scale``."""
    return Timing(interval=scrape_interval_for(duration_seconds), for_scale=min(1.0, scale),
                  min_for=MIN_ALERT_FOR_SECONDS, group_scale=min(1.0, scale))


MARKET_OPEN_RULES: dict[str, Any] = {
    "groups": [{
        "name": "rehearsal_market_open",
        "rules": [{
            "record": "gatewatch_market_open",
            "expr": "vector(1)",
            "labels": {"exchange": "SIMULATED", "source": "rehearsal"},
        }],
    }],
}
"""The simulator trades around the clock and says so in its contract hours, which the exporter's
gauge follows once connected; before that the NYSE calendar decides (the one market-hours rule),
which at night reads closed. This series tells the rules and gates (which all test
``max(gatewatch_market_open) == 1``) that the rehearsed session is in market hours from its first
scrape, without touching the exporter or the rules."""


def write_prometheus_config(ports: Ports, scale: float, duration_seconds: float, out_dir: Path,
                            market_always_open: bool = True) -> Path:
    """The shipped prometheus.yml and rules for the rehearsal's loopback ports, time compressed."""
    extra = {"rehearsal-market-open.yml": MARKET_OPEN_RULES} if market_always_open else None
    return render_prometheus_config(out_dir / "prometheus", exporter=f"127.0.0.1:{ports.exporter}",
                                    prometheus=f"127.0.0.1:{ports.prometheus}",
                                    alertmanager=f"127.0.0.1:{ports.alertmanager}",
                                    timing=timing_for(scale, duration_seconds), extra_rules=extra,
                                    proxy=f"127.0.0.1:{ports.proxy_metrics}")


def write_alertmanager_config(ports: Ports, scale: float, duration_seconds: float, out_dir: Path) -> Path:
    """The shipped Alertmanager config (render.sh: routes, grouping, inhibit rules, e-mail templates)
    delivering to the rehearsal's own SMTP sink: a rehearsal never pages anyone, and whatever SMTP
    settings the operator's environment holds are not used."""
    smtp = local_smtp_settings("127.0.0.1", ports.smtp, out_dir / "alertmanager" / "no_password")
    return render_alertmanager_config(out_dir / "alertmanager", smtp, timing_for(scale, duration_seconds))
