"""Real Prometheus, Alertmanager and an SMTP sink for tests, from the local stack (gatewatch.localstack).

The tests start exactly what ``gatewatch stack`` and ``gatewatch rehearse`` start: configuration
rendered from the shipped files (prometheus/prometheus.yml, prometheus/rules/*.yml, alertmanager/
render.sh with its templates) with only the :data:`FAST` overlay's timings (1 s intervals, no
``for:``, no group wait), so they exercise the shipped expressions, routes, inhibitions and e-mail
templates, only faster. This module only adds the tests' shorthands.
"""

from __future__ import annotations

from pathlib import Path

from gatewatch.durations import parse_duration
from gatewatch.localstack import configs
from gatewatch.localstack.configs import (
    ALERTMANAGER_RENDER,
    FAST,
    PROMETHEUS_CONFIG,
    RULES_DIR,
    Timing,
    local_smtp_settings,
)
from gatewatch.localstack.servers import (
    AlertmanagerServer as Alertmanager,
)
from gatewatch.localstack.servers import (
    PrometheusServer as Prometheus,
)
from gatewatch.localstack.servers import (
    binaries_missing,
    running_alertmanager,
    running_prometheus,
    wait_until,
)
from gatewatch.localstack.smtp import MailSink as SmtpSink
from gatewatch.localstack.smtp import ReceivedMail

ROOT = configs.REPO_ROOT

__all__ = [
    "ALERTMANAGER_RENDER", "FAST", "PROMETHEUS_CONFIG", "ROOT", "RULES_DIR", "Alertmanager", "Prometheus",
    "ReceivedMail", "SmtpSink", "binaries_missing", "overlay_prometheus_config", "render_alertmanager_config",
    "running_alertmanager", "running_prometheus", "seconds", "smtp_sink", "wait_until",
]


def seconds(text: str) -> float:
    """A Prometheus duration in seconds (the one parser)."""
    return parse_duration(text)


def overlay_prometheus_config(dst: Path, *, exporter_target: str, alertmanager_target: str | None,
                              prometheus_target: str | None = None, timing: Timing = FAST) -> Path:
    """The shipped prometheus.yml and rules for loopback targets, with the tests' timings."""
    return configs.render_prometheus_config(dst, exporter=exporter_target, prometheus=prometheus_target,
                                            alertmanager=alertmanager_target, timing=timing)


def render_alertmanager_config(dst: Path, *, smtp_port: int, timing: Timing = FAST) -> Path:
    """The shipped Alertmanager config (render.sh) delivering to a local SMTP sink, tests' timings."""
    return configs.render_alertmanager_config(dst, local_smtp_settings("127.0.0.1", smtp_port, dst / "no_password"),
                                              timing)


def smtp_sink() -> SmtpSink:
    """``with smtp_sink() as sink``: a local SMTP server on a free port collecting messages."""
    return SmtpSink()
