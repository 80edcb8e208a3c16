"""``gatewatch stack``: the whole monitoring stack without Docker.

Why it exists: CI machines and a bare Raspberry Pi may have no Docker engine, yet the operator
still needs the simulator, the exporter, Prometheus and Alertmanager running together. This command
starts them as child processes from the same configuration files docker compose uses (Prometheus's
configuration is rendered from prometheus/prometheus.yml with 127.0.0.1 targets, never kept twice),
restarts a child that dies (with back-off, logged), and stops everything cleanly on SIGINT/SIGTERM
or after ``--duration``. Grafana has no native package here; the output says so and points at the
dashboards' JSON.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml
from loguru import logger

from gatewatch import safe_yaml
from gatewatch.config import (
    DEFAULT_CONFIG_PATH,
    GATEWAY_ENV,
    ConfigError,
    GatewatchConfig,
    load_config,
    split_host_port,
)
from gatewatch.logs import setup_logging

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_HOSTS = {"exporter": "exporter", "alertmanager": "alertmanager", "prometheus": "localhost"}
"""Service host names prometheus/prometheus.yml uses (its compose flavour) and what they stand for."""
ALERTMANAGER_BINARIES = ("prometheus-alertmanager", "alertmanager")
SMTP_VARIABLES = ("GATEWATCH_SMTP_SMARTHOST", "GATEWATCH_ALERT_EMAIL_FROM", "GATEWATCH_ALERT_EMAIL_TO")
"""What alertmanager/render.sh requires; without them the native stack runs without Alertmanager."""
RESTART_BACKOFF_INITIAL = 1.0
RESTART_BACKOFF_MAX = 30.0
HEALTHY_RESET_AFTER = 60.0
"""A child that stayed up this long is considered healthy again: its back-off starts over."""
STOP_GRACE_SECONDS = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help="configuration file (default: config/gatewatch.yaml)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--with-prometheus", dest="with_prometheus", action="store_true", default=True,
                       help="start Prometheus and Alertmanager if their binaries are on PATH (default)")
    group.add_argument("--no-prometheus", dest="with_prometheus", action="store_false",
                       help="run only the simulator and the exporter")
    parser.add_argument("--data-dir", default="var/stack",
                        help="rendered configs, Prometheus/Alertmanager data, child logs (default var/stack)")
    parser.add_argument("--duration", type=float, default=None,
                        help="stop after this many seconds (default: run until SIGINT/SIGTERM)")
    parser.add_argument("--prometheus-listen", default="127.0.0.1:9090", help="default 127.0.0.1:9090")
    parser.add_argument("--alertmanager-listen", default="127.0.0.1:9093", help="default 127.0.0.1:9093")
    parser.add_argument("--sim-control-port", type=int, default=4080,
                        help="simulator's HTTP control API port (default 4080)")
    parser.add_argument("--scrape-interval", default=None,
                        help="override prometheus.yml's scrape/evaluation interval, e.g. 1s (tests)")
    parser.add_argument("--prometheus-dir", default=None,
                        help="folder with prometheus.yml and rules/ (default: ./prometheus)")
    parser.add_argument("--alertmanager-dir", default=None,
                        help="folder with render.sh and the Alertmanager template (default: ./alertmanager)")


# ---------------------------------------------------------------------------------------------
# configuration rendering


def _project_dir(name: str, explicit: str | None) -> Path:
    if explicit:
        return Path(explicit).resolve()
    local = Path(name)
    return local.resolve() if local.is_dir() else ROOT / name


def loopback(host: str) -> str:
    """A wildcard listen address is reached through loopback."""
    return "127.0.0.1" if host in {"", "0.0.0.0", "::"} else host


def render_prometheus_config(source: Path, *, exporter: str, prometheus: str, alertmanager: str | None,
                             scrape_interval: str | None = None) -> dict[str, Any]:
    """prometheus/prometheus.yml with compose service names replaced by native addresses.

    ``alertmanager`` None drops the alerting section and Alertmanager's own scrape job, so a stack
    without Alertmanager does not log a failed notification every evaluation.
    """
    data = safe_yaml.load_file(source)
    replace = {f"{COMPOSE_HOSTS['exporter']}:14002": exporter,
               f"{COMPOSE_HOSTS['prometheus']}:9090": prometheus}
    if alertmanager:
        replace[f"{COMPOSE_HOSTS['alertmanager']}:9093"] = alertmanager

    def rewrite(targets: list[str]) -> list[str]:
        return [replace.get(t, t) for t in targets]

    data["rule_files"] = [str((source.parent / rule).resolve()) for rule in data.get("rule_files", [])]
    jobs = []
    for job in data.get("scrape_configs", []):
        if job.get("job_name") == "alertmanager" and not alertmanager:
            continue
        for static in job.get("static_configs", []):
            static["targets"] = rewrite(static.get("targets", []))
        jobs.append(job)
    data["scrape_configs"] = jobs
    if alertmanager:
        for am in data.get("alerting", {}).get("alertmanagers", []):
            for static in am.get("static_configs", []):
                static["targets"] = rewrite(static.get("targets", []))
    else:
        data.pop("alerting", None)
    if scrape_interval:
        glob = data.setdefault("global", {})
        glob["scrape_interval"] = glob["evaluation_interval"] = scrape_interval
        glob["scrape_timeout"] = scrape_interval
        for job in data["scrape_configs"]:
            job.pop("scrape_interval", None)
            job.pop("scrape_timeout", None)
    return dict(data)


def render_alertmanager_config(folder: Path, output: Path, environ: dict[str, str]) -> None:
    """Run alertmanager/render.sh (the same step the compose service runs) into ``output``.

    Raises ConfigError with the script's message (it names the missing or bad variable).
    """
    script = folder / "render.sh"
    if not script.is_file():
        raise ConfigError(f"--alertmanager-dir: {script} not found")
    output.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["sh", str(script), str(output)], env=environ, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise ConfigError(done.stderr.strip() or f"{script} failed with status {done.returncode}")
    output.chmod(0o600)


# ---------------------------------------------------------------------------------------------
# supervision


@dataclass
class Child:
    """One supervised process: how to start it, where its output goes, how to tell it is ready."""

    name: str
    argv: list[str]
    log_path: Path
    ready_url: str | None = None
    env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff: float = RESTART_BACKOFF_INITIAL
    restart_at: float | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self._log is None:
            self._log = self.log_path.open("ab")
        # A session of its own: Ctrl-C in the terminal reaches only the supervisor, which then
        # stops the children in order (exporter before the Gateway it watches).
        self.process = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=self.env, start_new_session=True)
        self.started_at = time.monotonic()
        self.restart_at = None
        logger.info("{} started (pid {}), log {}", self.name, self.process.pid, self.log_path)

    def stop(self) -> None:
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                logger.warning("{} ignored SIGTERM for {:.0f} s: killing it", self.name, STOP_GRACE_SECONDS)
                proc.kill()
                proc.wait()
            logger.info("{} stopped", self.name)
        if self._log is not None:
            self._log.close()
            self._log = None


def url_answers(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(200 <= response.status < 300)
    except (urllib.error.URLError, OSError, ValueError):
        return False


class Supervisor:
    """Starts children in order, restarts crashed ones with exponential back-off, stops in reverse."""

    def __init__(self, children: list[Child]) -> None:
        self.children = children
        self.stopping = threading.Event()

    def start_all(self, ready_timeout: float = 30.0) -> None:
        for child in self.children:
            child.start()
            if child.ready_url and not self._wait_ready(child, ready_timeout):
                logger.warning("{} not ready at {} after {:.0f} s; carrying on (see {})",
                               child.name, child.ready_url, ready_timeout, child.log_path)

    def _wait_ready(self, child: Child, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping.is_set():
            assert child.ready_url is not None
            if url_answers(child.ready_url):
                logger.info("{} ready at {}", child.name, child.ready_url)
                return True
            if child.process is not None and child.process.poll() is not None:
                return False
            time.sleep(0.2)
        return False

    def check_once(self) -> None:
        """Notice exits and restart children whose back-off has elapsed."""
        now = time.monotonic()
        for child in self.children:
            proc = child.process
            if proc is None:
                continue
            if child.restart_at is None and proc.poll() is not None:
                if now - child.started_at >= HEALTHY_RESET_AFTER:
                    child.backoff = RESTART_BACKOFF_INITIAL
                child.restart_at = now + child.backoff
                logger.error("{} exited with status {}; restarting in {:.0f} s (see {})",
                             child.name, proc.returncode, child.backoff, child.log_path)
                child.backoff = min(child.backoff * 2, RESTART_BACKOFF_MAX)
            elif child.restart_at is not None and now >= child.restart_at:
                child.restarts += 1
                child.start()

    def run(self, duration: float | None) -> None:
        deadline = None if duration is None else time.monotonic() + duration
        while not self.stopping.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                logger.info("--duration reached: stopping the stack")
                break
            self.check_once()
            self.stopping.wait(0.5)

    def stop_all(self) -> None:
        for child in reversed(self.children):
            child.stop()


# ---------------------------------------------------------------------------------------------
# the stack


def _gatewatch_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "gatewatch", *args]


def plan_children(args: argparse.Namespace, config: GatewatchConfig, config_path: Path | None,
                  environ: dict[str, str]) -> tuple[list[Child], list[str]]:
    """The children to run and the lines to print about them (URLs, what is missing and why)."""
    data_dir = Path(args.data_dir).resolve()
    logs = data_dir / "logs"
    children: list[Child] = []
    notes: list[str] = []
    gateway = f"{config.gateway.host}:{config.gateway.port}"

    if environ.get(GATEWAY_ENV):
        notes.append(f"Gateway      {gateway} ({GATEWAY_ENV}; simulator not started)")
    else:
        control = args.sim_control_port
        sim_argv = ["sim", "--host", config.gateway.host, "--port", str(config.gateway.port),
                    "--control-port", str(control)]
        # the exporter's configuration, so the simulator serves probes.symbols and makes
        # gateway.client_id its Master API client id
        sim_config = config_path or (DEFAULT_CONFIG_PATH.resolve() if DEFAULT_CONFIG_PATH.exists() else None)
        if sim_config is not None:
            sim_argv += ["--config", str(sim_config)]
        children.append(Child("simulator", _gatewatch_argv(*sim_argv), logs / "simulator.log",
            ready_url=f"http://{loopback(config.gateway.host)}:{control}/healthz"))
        notes.append(f"Simulator    {gateway} (TWS API), control http://{loopback(config.gateway.host)}:{control}")

    ex_host, ex_port = config.exporter_host_port
    exporter_addr = f"{loopback(ex_host)}:{ex_port}"
    exporter_argv = _gatewatch_argv("exporter")
    if config_path is not None:
        exporter_argv += ["--config", str(config_path)]
    children.append(Child("exporter", exporter_argv, logs / "exporter.log",
                          ready_url=f"http://{exporter_addr}/healthz"))
    notes.append(f"Exporter     http://{exporter_addr}/metrics  /healthz")

    if not args.with_prometheus:
        notes.append("Prometheus   not started (--no-prometheus)")
    elif shutil.which("prometheus") is None:
        notes.append("Prometheus   not started: no 'prometheus' on PATH (Debian: apt-get install prometheus)")
    else:
        am_addr = _plan_alertmanager(args, environ, data_dir, children, notes)
        prom_host, prom_port = split_host_port(args.prometheus_listen, field="--prometheus-listen")
        prom_addr = f"{loopback(prom_host)}:{prom_port}"
        source = _project_dir("prometheus", args.prometheus_dir) / "prometheus.yml"
        if not source.is_file():
            raise ConfigError(f"--prometheus-dir: {source} not found")
        rendered = render_prometheus_config(source, exporter=exporter_addr, prometheus=prom_addr,
                                            alertmanager=am_addr, scrape_interval=args.scrape_interval)
        config_file = data_dir / "prometheus" / "prometheus.yml"
        config_file.parent.mkdir(parents=True, exist_ok=True)
        config_file.write_text("# Rendered by gatewatch stack from " + str(source) + "; do not edit.\n"
                               + yaml.safe_dump(rendered, sort_keys=False), encoding="utf-8")
        children.append(Child("prometheus", [
            "prometheus", f"--config.file={config_file}",
            f"--storage.tsdb.path={data_dir / 'prometheus' / 'data'}",
            "--storage.tsdb.retention.time=30d", f"--web.listen-address={prom_host}:{prom_port}",
        ], logs / "prometheus.log", ready_url=f"http://{prom_addr}/-/ready"))
        notes.append(f"Prometheus   http://{prom_addr}")
    notes.append("Grafana      not available natively (no package here): run docker compose, or import "
                 f"{_project_dir('grafana', None) / 'dashboards'}/*.json into a Grafana whose Prometheus "
                 "datasource has uid 'prometheus'")
    return children, notes


def _plan_alertmanager(args: argparse.Namespace, environ: dict[str, str], data_dir: Path,
                       children: list[Child], notes: list[str]) -> str | None:
    binary = next((b for b in ALERTMANAGER_BINARIES if shutil.which(b)), None)
    missing = [name for name in SMTP_VARIABLES if not environ.get(name)]
    if binary is None:
        notes.append("Alertmanager not started: no prometheus-alertmanager/alertmanager on PATH")
        return None
    if missing:
        notes.append(f"Alertmanager not started: set {', '.join(missing)} (see .env.example)")
        return None
    host, port = split_host_port(args.alertmanager_listen, field="--alertmanager-listen")
    addr = f"{loopback(host)}:{port}"
    config_file = data_dir / "alertmanager" / "alertmanager.yml"
    render_alertmanager_config(_project_dir("alertmanager", args.alertmanager_dir), config_file, environ)
    children.append(Child("alertmanager", [
        binary, f"--config.file={config_file}", f"--storage.path={data_dir / 'alertmanager' / 'data'}",
        f"--web.listen-address={host}:{port}", "--cluster.listen-address=",
    ], data_dir / "logs" / "alertmanager.log", ready_url=f"http://{addr}/-/ready"))
    notes.append(f"Alertmanager http://{addr}")
    return addr


def run(args: argparse.Namespace) -> int:
    config_path = Path(args.config).resolve() if args.config else None
    config = load_config(config_path)
    setup_logging(config.exporter.log_level, config.exporter.log_json)
    if args.duration is not None and args.duration <= 0:
        raise ConfigError(f"--duration: must be positive, got {args.duration:g}")
    children, notes = plan_children(args, config, config_path, dict(os.environ))
    supervisor = Supervisor(children)

    def on_signal(signum: int, _frame: object) -> None:
        logger.info("{} received: stopping the stack", signal.Signals(signum).name)
        supervisor.stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        supervisor.start_all()
        print("gatewatch stack is up:\n  " + "\n  ".join(notes), flush=True)
        supervisor.run(args.duration)
    finally:
        supervisor.stop_all()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
