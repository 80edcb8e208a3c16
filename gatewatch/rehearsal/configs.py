"""The configuration a rehearsal generates: gatewatch's, Prometheus's and Alertmanager's.

Why generated and not the files in the repo as they are: a rehearsal compresses a 2-hour session
into minutes, so probe intervals, scrape and evaluation intervals and alert ``for:`` durations must
shrink with it, and every port is a free loopback port. Everything else (thresholds, rule
expressions, gates) is the repo's own, so the rehearsal tests what the operator will run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gatewatch import safe_yaml
from gatewatch.config import GatewatchConfig, load_config, parse_duration
from gatewatch.rehearsal.processes import REPO_ROOT

RULES_DIR = REPO_ROOT / "prometheus" / "rules"
ALERTMANAGER_CONFIG = REPO_ROOT / "alertmanager" / "alertmanager.yml"
MIN_ALERT_FOR_SECONDS = 2.0


@dataclass(frozen=True)
class Ports:
    """Every loopback port one rehearsal uses."""

    gateway: int
    control: int
    exporter: int
    prometheus: int
    alertmanager: int
    smtp: int


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
    config = load_config(base) if base is not None else GatewatchConfig()
    interval = active_interval_for(duration_seconds)
    data = config.model_dump(mode="json")
    data["gateway"].update(host="127.0.0.1", port=ports.gateway, paper=True, paper_ports=[ports.gateway],
                           account=account, connect_timeout=5.0, request_timeout=5.0,
                           reconnect_initial=0.5, reconnect_max=5.0)
    data["exporter"].update(listen=f"127.0.0.1:{ports.exporter}")
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


def write_yaml(data: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def write_gatewatch_config(config: GatewatchConfig, path: Path) -> Path:
    return write_yaml(config.model_dump(mode="json"), path)


def _format_seconds(seconds: float) -> str:
    return f"{max(0, round(seconds * 1000))}ms"


def scale_rule_file(source: Path, scale: float) -> dict[str, Any]:
    """A rule file with every alert's ``for:`` multiplied by ``scale`` (at least 2 s when non-zero)."""
    data = safe_yaml.load_file(source) or {}
    for group in data.get("groups", []) or []:
        for rule in group.get("rules", []) or []:
            if "alert" in rule and rule.get("for"):
                seconds = parse_duration(str(rule["for"]))
                if seconds > 0 and scale < 1:
                    rule["for"] = _format_seconds(max(MIN_ALERT_FOR_SECONDS, seconds * scale))
            if "alert" in rule and rule.get("keep_firing_for") and scale < 1:
                keep = parse_duration(str(rule["keep_firing_for"]))
                rule["keep_firing_for"] = _format_seconds(keep * scale)
    return data


def rule_files() -> list[Path]:
    """The repo's Prometheus rule files (alerting and recording), if they exist yet."""
    if not RULES_DIR.is_dir():
        return []
    return sorted(p for p in RULES_DIR.iterdir() if p.suffix in (".yml", ".yaml") and not p.name.endswith(
        ("_test.yml", "_test.yaml")) and "test" not in p.parent.name)


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
    """prometheus.yml scraping the exporter as job "gatewatch" (the name the gates use)."""
    interval = _format_seconds(scrape_interval_for(duration_seconds))
    rules_out = out_dir / "prometheus" / "rules"
    written = [str(write_yaml(scale_rule_file(src, scale), rules_out / src.name)) for src in rule_files()]
    if market_always_open:
        written.append(str(write_yaml(MARKET_OPEN_RULES, rules_out / "rehearsal-market-open.yml")))
    config = {
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
        "rule_files": written,
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{ports.alertmanager}"]}]}],
        },
        "scrape_configs": [
            {"job_name": "gatewatch", "static_configs": [{"targets": [f"127.0.0.1:{ports.exporter}"]}]},
        ],
    }
    return write_yaml(config, out_dir / "prometheus" / "prometheus.yml")


def write_alertmanager_config(ports: Ports, out_dir: Path) -> Path:
    """Every alert to one e-mail receiver on the local SMTP sink, with the repo's inhibitions.

    Real receivers (the operator's mail server, phone pushes) are replaced: a rehearsal must never
    page anyone. The repo's inhibit rules and grouping are kept, since they shape what arrives.
    """
    repo: dict[str, Any] = {}
    if ALERTMANAGER_CONFIG.is_file():
        repo = safe_yaml.load_file(ALERTMANAGER_CONFIG) or {}
    group_by = (repo.get("route") or {}).get("group_by", ["alertname"])
    config: dict[str, Any] = {
        "global": {
            "smtp_smarthost": f"127.0.0.1:{ports.smtp}",
            "smtp_from": "gatewatch-rehearsal@localhost",
            "smtp_require_tls": False,
        },
        "route": {
            "receiver": "rehearsal-mail",
            "group_by": group_by,
            "group_wait": "0s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [{
            "name": "rehearsal-mail",
            "email_configs": [{"to": "operator@localhost", "send_resolved": True}],
        }],
    }
    if repo.get("inhibit_rules"):
        config["inhibit_rules"] = repo["inhibit_rules"]
    return write_yaml(config, out_dir / "alertmanager" / "alertmanager.yml")


def seconds(value: str | float) -> float:
    """Parse a duration the way the rest of gatewatch does (``90s``, ``10m``, ``1h``)."""
    return parse_duration(value)
