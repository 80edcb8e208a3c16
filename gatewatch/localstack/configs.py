"""Prometheus and Alertmanager configuration for a local stack, rendered from the shipped files.

Why rendered and never written anew: a stack that runs its own rules, routes or inhibitions proves
nothing about the ones the operator ships. Everything comes from prometheus/prometheus.yml,
prometheus/rules/*.yml and alertmanager/render.sh (with its template and e-mail templates); the
only changes allowed are those of a :class:`Timing` overlay (shorter intervals, scaled ``for:``
and Alertmanager group timings) and loopback addresses in place of compose's service names.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gatewatch import safe_yaml
from gatewatch.config import ConfigError
from gatewatch.durations import parse_duration

REPO_ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO_ROOT / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES_DIR = PROMETHEUS_DIR / "rules"
ALERTMANAGER_DIR = REPO_ROOT / "alertmanager"
ALERTMANAGER_RENDER = ALERTMANAGER_DIR / "render.sh"

COMPOSE_TARGETS = {"exporter": "exporter:14002", "alertmanager": "alertmanager:9093", "prometheus": "localhost:9090",
                   "proxy": "proxy:14012"}
"""The targets prometheus/prometheus.yml names (its compose flavour) and the part each stands for."""
SMTP_VARIABLES = ("GATEWATCH_SMTP_SMARTHOST", "GATEWATCH_ALERT_EMAIL_FROM", "GATEWATCH_ALERT_EMAIL_TO")
"""What alertmanager/render.sh requires to deliver to the operator's mail server."""
LOCAL_SENDER = "gatewatch@localhost"
LOCAL_RECIPIENT = "operator@localhost"


@dataclass(frozen=True)
class Timing:
    """What an overlay may change: it only makes the shipped timings shorter.

    ``interval`` replaces the global scrape/evaluation interval and every rule group's interval
    when shorter than the shipped one (jobs that set their own, the stack watching itself, keep it).
    Each alert's ``for:``/``keep_firing_for:`` is multiplied by
    ``for_scale`` (at most 1), then capped at ``max_for``; a non-zero ``for:`` stays at least
    ``min_for`` (one-sample noise must still not fire). Alertmanager's ``group_wait`` and
    ``group_interval`` are multiplied by ``group_scale`` (``group_interval`` at least 1 s);
    ``repeat_interval`` stays as shipped.
    """

    interval: float | None = None
    for_scale: float = 1.0
    max_for: float | None = None
    min_for: float = 0.0
    group_scale: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.for_scale <= 1 or not 0 <= self.group_scale <= 1:
            raise ValueError("an overlay only shortens: for_scale and group_scale must be within [0, 1]")


SHIPPED = Timing()
FAST = Timing(interval=1.0, for_scale=0.0, group_scale=0.0)
"""The tests' overlay: 1 s scrapes and evaluation, no ``for:``, no group wait."""


def format_seconds(seconds: float) -> str:
    """A Prometheus/Alertmanager duration: whole seconds (``2s``) or milliseconds (``2500ms``)."""
    millis = max(0, round(seconds * 1000))
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def _shorter(value: Any, interval: float | None) -> Any:
    if interval is None or (value is not None and parse_duration(value) <= interval):
        return value
    return format_seconds(interval)


def _scaled_for(value: Any, timing: Timing) -> str | None:
    seconds = parse_duration(value)
    if seconds <= 0:
        return None
    scaled = seconds * timing.for_scale
    if timing.max_for is not None:
        scaled = min(scaled, timing.max_for)
    if scaled > 0 or timing.min_for > 0:
        scaled = max(scaled, min(timing.min_for, seconds))
    return format_seconds(scaled)


def rule_files() -> list[Path]:
    """The shipped rule files, in prometheus.yml's order."""
    doc = safe_yaml.load_file(PROMETHEUS_CONFIG) or {}
    return [(PROMETHEUS_DIR / name).resolve() for name in doc.get("rule_files", [])]


def overlay_rules(source: Path, timing: Timing) -> dict[str, Any]:
    """One shipped rule file with the overlay's timings; expressions, labels and annotations untouched."""
    doc = safe_yaml.load_file(source) or {}
    for group in doc.get("groups", []) or []:
        if timing.interval is not None:
            group["interval"] = _shorter(group.get("interval"), timing.interval)
        for rule in group.get("rules", []) or []:
            for key in ("for", "keep_firing_for"):
                if "alert" in rule and rule.get(key) is not None:
                    scaled = _scaled_for(rule[key], timing)
                    if scaled is None:
                        rule.pop(key)
                    else:
                        rule[key] = scaled
    return dict(doc)


def render_prometheus_config(dst: Path, *, exporter: str, prometheus: str | None = None,
                             alertmanager: str | None = None, timing: Timing = SHIPPED,
                             extra_rules: dict[str, dict[str, Any]] | None = None, proxy: str | None = None) -> Path:
    """Write ``dst/prometheus.yml`` and ``dst/rules/``: the shipped config with loopback targets.

    A job (or the alerting section) whose compose target has no address here is dropped, so a
    stack without Alertmanager does not log a failed notification every evaluation. ``extra_rules``
    adds rule files (name → document) that the shipped ones do not have (the rehearsal's
    round-the-clock market). Returns the path of prometheus.yml.
    """
    doc = safe_yaml.load_file(PROMETHEUS_CONFIG)
    addresses = {COMPOSE_TARGETS["exporter"]: exporter, COMPOSE_TARGETS["prometheus"]: prometheus,
                 COMPOSE_TARGETS["alertmanager"]: alertmanager, COMPOSE_TARGETS["proxy"]: proxy}
    rules_dir = dst / "rules"
    rules_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for source in rule_files():
        written.append(_write_yaml(overlay_rules(source, timing), rules_dir / source.name))
    for name, rules in (extra_rules or {}).items():
        written.append(_write_yaml(rules, rules_dir / name))
    doc["rule_files"] = [str(p) for p in written]
    if timing.interval is not None:
        glob = doc.setdefault("global", {})
        for key in ("scrape_interval", "evaluation_interval", "scrape_timeout"):
            glob[key] = _shorter(glob.get(key), timing.interval)
    jobs = []
    for job in doc.get("scrape_configs", []):
        targets = [addresses.get(t, t) for static in job.get("static_configs", []) for t in static.get("targets", [])]
        if not all(targets):
            continue
        job["static_configs"] = [{"targets": targets}]
        jobs.append(job)  # a job's own (longer, self-monitoring) interval is kept: it judges nothing
    doc["scrape_configs"] = jobs
    if alertmanager is None:
        doc.pop("alerting", None)
    else:
        for am in doc.get("alerting", {}).get("alertmanagers", []):
            for static in am.get("static_configs", []):
                static["targets"] = [addresses.get(t, t) for t in static.get("targets", [])]
    path = dst / "prometheus.yml"
    path.write_text(f"# Rendered from {PROMETHEUS_CONFIG}; do not edit.\n" + yaml.safe_dump(doc, sort_keys=False),
                    encoding="utf-8")
    return path


def smtp_settings(environ: dict[str, str]) -> dict[str, str] | None:
    """The operator's SMTP settings from the environment, or None when none are given at all."""
    given = {k: v for k, v in environ.items() if k.startswith(("GATEWATCH_SMTP_", "GATEWATCH_ALERT_")) and v}
    return given or None


def local_smtp_settings(host: str, port: int, password_file: Path) -> dict[str, str]:
    """render.sh's variables for delivery to a local SMTP sink (no TLS, no login)."""
    return {
        "GATEWATCH_SMTP_SMARTHOST": f"{host}:{port}",
        "GATEWATCH_ALERT_EMAIL_FROM": LOCAL_SENDER,
        "GATEWATCH_ALERT_EMAIL_TO": LOCAL_RECIPIENT,
        "GATEWATCH_SMTP_REQUIRE_TLS": "false",
        "GATEWATCH_SMTP_USERNAME": "",
        "GATEWATCH_SMTP_PASSWORD_FILE": str(password_file),
    }


def render_alertmanager_config(dst: Path, smtp: dict[str, str], timing: Timing = SHIPPED) -> Path:
    """Run alertmanager/render.sh (the step the compose service runs) into ``dst/alertmanager.yml``.

    ``smtp`` holds render.sh's variables; nothing else of this process's environment reaches the
    script, so an operator's settings never leak into a rehearsal or a test. Routes, grouping and
    inhibit rules are the shipped ones; only group timings follow ``timing``. Raises ConfigError
    with the script's message (it names the missing or bad variable).
    """
    dst.mkdir(parents=True, exist_ok=True)
    path = dst / "alertmanager.yml"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **smtp}
    done = subprocess.run(["sh", str(ALERTMANAGER_RENDER), str(path)], env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise ConfigError(done.stderr.strip() or f"{ALERTMANAGER_RENDER} failed with status {done.returncode}")
    if timing.group_scale < 1:
        doc = safe_yaml.load_file(path)
        routes = [doc["route"]]
        while routes:
            route = routes.pop()
            for key, floor in (("group_wait", 0.0), ("group_interval", 1.0)):
                if key in route:
                    route[key] = format_seconds(max(floor, parse_duration(route[key]) * timing.group_scale))
            routes.extend(route.get("routes", []) or [])
        path.write_text(f"# Rendered by {ALERTMANAGER_RENDER}, group timings scaled by {timing.group_scale:g}.\n"
                        + yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    path.chmod(0o600)
    return path


def _write_yaml(data: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path
