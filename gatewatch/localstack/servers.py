"""Prometheus and Alertmanager processes for a local stack, and a read-only Prometheus on old data.

Why here: the native stack, the rehearsal, the tests and the benchmarks start the same two
binaries the same careful way (loopback only, fresh data folder, Alertmanager clustering off so
there is no settle wait, readiness waited for with the cause reported when a binary exits).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gatewatch.config import ConfigError
from gatewatch.evidence.prometheus_api import PrometheusClient
from gatewatch.localstack.configs import PROMETHEUS_CONFIG
from gatewatch.localstack.net import free_port
from gatewatch.localstack.process import Process, StartError

PROMETHEUS_BINARIES = ("prometheus",)
ALERTMANAGER_BINARIES = ("prometheus-alertmanager", "alertmanager")
READ_ONLY_RETENTION = "100y"
"""Long enough that a temporary Prometheus never deletes old blocks of the data it was given."""


def find_binary(names: tuple[str, ...]) -> str | None:
    """The first of ``names`` on PATH (Debian calls Alertmanager prometheus-alertmanager)."""
    return next((name for name in names if shutil.which(name)), None)


def binaries_missing() -> list[str]:
    """The binaries a full local stack needs that are not on PATH."""
    wanted = {"prometheus": PROMETHEUS_BINARIES, "promtool": ("promtool",),
              "prometheus-alertmanager": ALERTMANAGER_BINARIES, "amtool": ("amtool",)}
    return [name for name, names in wanted.items() if find_binary(names) is None]


def prometheus_argv(config: Path, data_dir: Path, listen: str, *, retention: str = "30d") -> list[str]:
    """The command line of a loopback Prometheus (no --web.enable-lifecycle: nobody may stop it by HTTP)."""
    binary = find_binary(PROMETHEUS_BINARIES) or PROMETHEUS_BINARIES[0]
    return [binary, f"--config.file={config}", f"--storage.tsdb.path={data_dir}",
            f"--storage.tsdb.retention.time={retention}", f"--web.listen-address={listen}", "--log.level=warn"]


def alertmanager_argv(config: Path, data_dir: Path, listen: str) -> list[str]:
    """The command line of a single Alertmanager (clustering off: no gossip port, no settle wait)."""
    binary = find_binary(ALERTMANAGER_BINARIES) or ALERTMANAGER_BINARIES[0]
    return [binary, f"--config.file={config}", f"--storage.path={data_dir}", f"--web.listen-address={listen}",
            "--cluster.listen-address=", "--log.level=warn"]


@dataclass
class Server:
    """A running server process and the loopback address it answers on."""

    process: Process
    address: str

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    def stop(self) -> None:
        self.process.stop()


@dataclass
class PrometheusServer(Server):
    """A running Prometheus; queries go through the one Prometheus API client."""

    @property
    def api(self) -> PrometheusClient:
        return PrometheusClient(self.url, timeout=5.0)

    def value(self, expr: str) -> float | None:
        """The first value of an instant query now, None when it returns nothing."""
        result = self.api.query(expr, time.time())
        return result[0][1] if result else None

    def alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts as Prometheus sees them."""
        return self.api.alerts()

    def wait_for_target_up(self, job: str, timeout: float = 15.0) -> None:
        wait_until(lambda: self.value(f'up{{job="{job}"}}') == 1.0, timeout, f"target up{{job={job!r}}} == 1")

    def wait_for_alertmanager(self, timeout: float = 15.0) -> None:
        wait_until(self.api.alertmanagers, timeout, "an active Alertmanager in Prometheus")


@dataclass
class AlertmanagerServer(Server):
    """A running Alertmanager with its v2 API (alerts in, alerts out)."""

    def alerts(self, active: bool = True, inhibited: bool = True, silenced: bool = True) -> list[dict[str, Any]]:
        params = urllib.parse.urlencode({"active": str(active).lower(), "inhibited": str(inhibited).lower(),
                                         "silenced": str(silenced).lower()})
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts?{params}", timeout=5) as response:
            return list(json.loads(response.read()))

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """Send alerts as Prometheus would (labels, annotations, startsAt/endsAt optional)."""
        request = urllib.request.Request(f"{self.url}/api/v2/alerts", data=json.dumps(alerts).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``check`` until it returns something truthy; TimeoutError naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}"
                       + (f" (last error: {last_error})" if last_error else ""))


def _start(name: str, argv_for: Callable[[str, Path], list[str]], work_dir: Path, timeout: float,
           port: int | None, attempts: int = 3, data: Path | None = None) -> tuple[Process, str]:
    """Start on a free port (or ``port``); another port if someone took it meanwhile.

    Each attempt gets a fresh data folder in ``work_dir`` unless ``data`` names one."""
    last: StartError | None = None
    for attempt in range(1 if port else attempts):
        address = f"127.0.0.1:{port or free_port()}"
        data_dir = data or work_dir / f"{name}-data-{attempt}"
        data_dir.mkdir(parents=True, exist_ok=True)
        process = Process(name, argv_for(address, data_dir), work_dir / f"{name}-{attempt}.log",
                          ready_url=f"http://{address}/-/ready").start()
        try:
            process.wait_ready(timeout)
            return process, address
        except StartError as exc:
            process.stop()
            last = exc
            if "address already in use" not in process.log_tail().lower():
                break
    raise last or StartError(f"{name} did not start")


@contextmanager
def running_prometheus(config: Path, work_dir: Path, *, port: int | None = None, timeout: float = 20.0,
                       retention: str = "30d") -> Iterator[PrometheusServer]:
    """Prometheus with ``config`` on 127.0.0.1 (a free port unless given), fresh TSDB; stopped on exit."""
    process, address = _start("prometheus", lambda listen, data: prometheus_argv(config, data, listen,
                                                                                  retention=retention),
                              work_dir, timeout, port)
    server = PrometheusServer(process, address)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def running_alertmanager(config: Path, work_dir: Path, *, port: int | None = None,
                         timeout: float = 20.0) -> Iterator[AlertmanagerServer]:
    """Alertmanager with ``config`` on 127.0.0.1 (a free port unless given); stopped on exit."""
    process, address = _start("alertmanager", lambda listen, data: alertmanager_argv(config, data, listen),
                              work_dir, timeout, port)
    server = AlertmanagerServer(process, address)
    try:
        yield server
    finally:
        server.stop()


def _looks_like_tsdb(folder: Path) -> bool:
    return (folder / "wal").is_dir() or any((child / "meta.json").is_file() for child in folder.iterdir())


@contextmanager
def readonly_prometheus(data_dir: Path, *, timeout: float = 60.0) -> Iterator[str]:
    """A temporary Prometheus serving the data in ``data_dir`` (for example a rehearsal's); yields its URL.

    Read-only for the folder given: Prometheus writes to its data folder (WAL replay, lock file,
    compaction), so it runs on a copy in a temporary folder, removed afterwards. It scrapes nothing
    and evaluates no rules (its intervals are the shipped ones: subqueries step by them); what the
    recorded session's rules wrote (``ALERTS``, recording rules)
    is in the data. Retention is long enough that no old block is deleted.
    """
    source = Path(data_dir)
    if not source.is_dir():
        raise ConfigError(f"--prometheus-data: no such folder: {source}")
    if not _looks_like_tsdb(source):
        raise ConfigError(f"--prometheus-data: {source} is not a Prometheus data folder (no wal/ and no blocks)")
    with tempfile.TemporaryDirectory(prefix="gatewatch-readonly-prometheus-") as tmp:
        work = Path(tmp)
        data = work / "data"
        shutil.copytree(source, data, ignore=shutil.ignore_patterns("lock", "queries.active"))
        config = work / "prometheus.yml"
        # no jobs, no rules; the shipped global intervals, since a subquery's default step is the
        # evaluation interval of the Prometheus that answers it (the gates use subqueries)
        shipped = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8")) or {}
        glob = {k: v for k, v in (shipped.get("global") or {}).items() if k != "external_labels"}
        config.write_text(yaml.safe_dump({"global": glob}), encoding="utf-8")
        process, address = _start(
            "prometheus-readonly",
            lambda listen, folder: prometheus_argv(config, folder, listen, retention=READ_ONLY_RETENTION),
            work, timeout, None, data=data)
        try:
            yield f"http://{address}"
        finally:
            process.stop()

