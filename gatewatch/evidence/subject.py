"""The subject block: which account, Gateway and configuration the evidence is about.

Why it comes first: a three-minute rehearsal against the simulator and a two-hour real session
produce bundles that look alike; a reader must see what was watched before any verdict. The facts
come from what the exporter recorded in the window (account, Gateway address, server version,
exporter version), the configuration used (its SHA-256) and the Prometheus the data came from.
"""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path

from gatewatch.config import GatewatchConfig
from gatewatch.evidence.model import Subject, Window
from gatewatch.evidence.prometheus_api import PrometheusClient, PrometheusError


def gatewatch_version() -> str:
    try:
        return metadata.version("gatewatch")
    except metadata.PackageNotFoundError:
        return "unknown (not installed as a package)"


def config_fingerprint(config: GatewatchConfig, config_file: str | None) -> tuple[str, str]:
    """(what was used, SHA-256): the file's bytes when one was given, else the effective defaults."""
    if config_file:
        path = Path(config_file)
        return str(path), hashlib.sha256(path.read_bytes()).hexdigest()
    return "(defaults, no --config)", hashlib.sha256(config.model_dump_json().encode()).hexdigest()


def _last(client: PrometheusClient, expr: str, window: Window) -> list[tuple[dict[str, str], float]]:
    return client.query(f"last_over_time({expr}[{max(1, round(window.seconds))}s])", window.end)


def describe_subject(client: PrometheusClient, window: Window, config: GatewatchConfig, *,
                     config_file: str | None, kind: str, prometheus_text: str) -> Subject:
    """Everything the subject block states; a fact Prometheus does not hold reads 'unknown'."""
    used, digest = config_fingerprint(config, config_file)
    subject = Subject(kind=kind, evidence_version=gatewatch_version(), config_file=used, config_sha256=digest,
                      prometheus=prometheus_text)
    try:
        accounts = _last(client, "gatewatch_account_info", window)
        if accounts:
            subject.account = ", ".join(sorted({labels.get("account", "?") for labels, _ in accounts}))
            subject.account_type = ", ".join(sorted({labels.get("account_type", "?") for labels, _ in accounts}))
        info = _last(client, "gatewatch_exporter_info", window)
        if info:
            subject.gateway = ", ".join(sorted({labels.get("gateway", "?") for labels, _ in info}))
            subject.exporter_version = ", ".join(sorted({labels.get("version", "?") for labels, _ in info}))
        versions = _last(client, "gatewatch_gateway_server_version", window)
        if versions:
            subject.server_version = ", ".join(sorted({f"{value:.0f}" for _, value in versions}))
    except PrometheusError as exc:
        subject.gateway = f"unknown (Prometheus: {exc})"
    return subject


def prometheus_in_words(client: PrometheusClient, data_folder: Path | None) -> str:
    """Where the data came from, with the Prometheus version when it answers."""
    try:
        version = client.build_version()
    except PrometheusError:
        version = "version unknown"
    if data_folder is not None:
        return (f"the Prometheus data folder {data_folder}, read through a temporary read-only Prometheus "
                f"{version} on a copy")
    return f"Prometheus {version} at {client.base_url}"
