"""``gatewatch stack``: the whole monitoring stack without Docker.

Why it exists: CI machines and a bare Raspberry Pi may have no Docker engine, yet the operator
still needs the simulator, the exporter, Prometheus and Alertmanager running together. The local
stack (:mod:`gatewatch.localstack`) renders Prometheus's and Alertmanager's configuration from the
shipped files and supervises the processes: a part that cannot start stops the start with the
cause on the terminal and exit status 1; once up, a part that dies is restarted with back-off. The
stack stops cleanly on SIGINT/SIGTERM or after ``--duration``.

Alertmanager always runs with Prometheus: without SMTP settings it delivers to a local mailbox
file (an SMTP sink inside this process), so the alert path is whole from the first minute.
Grafana has no native package here; the output says so and points at the dashboards' JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from loguru import logger

from gatewatch.config import (
    DEFAULT_CONFIG_PATH,
    GATEWAY_ENV,
    ConfigError,
    GatewatchConfig,
    add_config_argument,
    load_config,
    parse_duration,
    split_host_port,
)
from gatewatch.localstack import configs
from gatewatch.localstack.net import loopback, port_in_use
from gatewatch.localstack.process import Process, StartError, Supervisor, gatewatch_command
from gatewatch.localstack.servers import ALERTMANAGER_BINARIES, alertmanager_argv, find_binary, prometheus_argv
from gatewatch.localstack.smtp import MailSink
from gatewatch.logs import setup_logging
from probes.active.runner import exporter_stop_grace

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0
"""How long one part may take to answer its readiness check before the start is abandoned."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--with-prometheus", dest="with_prometheus", action="store_true", default=True,
                       help="start Prometheus and Alertmanager if their binaries are on PATH (default)")
    group.add_argument("--no-prometheus", dest="with_prometheus", action="store_false",
                       help="run only the simulator and the exporter")
    parser.add_argument("--data-dir", default="var/stack",
                        help="rendered configs, Prometheus/Alertmanager data, logs, mailbox (default var/stack)")
    parser.add_argument("--duration", default=None,
                        help="stop after this long, e.g. 8s, 10m, 600 (default: run until SIGINT/SIGTERM)")
    parser.add_argument("--prometheus-listen", default="127.0.0.1:9090", help="default 127.0.0.1:9090")
    parser.add_argument("--alertmanager-listen", default="127.0.0.1:9093", help="default 127.0.0.1:9093")
    parser.add_argument("--sim-control-port", type=int, default=4080,
                        help="simulator's HTTP control API port (default 4080)")
    parser.add_argument("--scrape-interval", default=None,
                        help="a shorter scrape/evaluation interval than prometheus.yml's, e.g. 1s (tests)")


@dataclass
class Plan:
    """What to start, which addresses each part will listen on, and what to print once up."""

    processes: list[Process] = field(default_factory=list)
    listens: list[tuple[str, str, int]] = field(default_factory=list)
    """(part, host, port) each started part binds: checked free before anything starts."""
    notes: list[str] = field(default_factory=list)
    mail_sink: MailSink | None = None


def parse_stack_duration(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise ConfigError(f"--duration: {exc}") from exc
    if seconds <= 0:
        raise ConfigError(f"--duration: must be positive, got {text!r}")
    return seconds


def plan_stack(args: argparse.Namespace, config: GatewatchConfig, config_path: Path | None,
               environ: dict[str, str]) -> Plan:
    """The processes to run (in start order) and the lines to print about them."""
    data_dir = Path(args.data_dir).resolve()
    logs = data_dir / "logs"
    plan = Plan()
    gateway = f"{config.gateway.host}:{config.gateway.port}"

    if environ.get(GATEWAY_ENV):
        plan.notes.append(f"Gateway      {gateway} ({GATEWAY_ENV}; simulator not started)")
    else:
        control = args.sim_control_port
        sim_argv = ["sim", "--host", config.gateway.host, "--port", str(config.gateway.port),
                    "--control-port", str(control)]
        # the exporter's configuration, so the simulator serves probes.symbols and makes
        # gateway.client_id its Master API client id
        sim_config = config_path or (DEFAULT_CONFIG_PATH.resolve() if DEFAULT_CONFIG_PATH.exists() else None)
        if sim_config is not None:
            sim_argv += ["--config", str(sim_config)]
        sim_host = loopback(config.gateway.host)
        plan.processes.append(Process("simulator", gatewatch_command(*sim_argv), logs / "simulator.log",
                                      ready_url=f"http://{sim_host}:{control}/healthz", own_session=True))
        plan.listens += [("simulator (TWS API)", config.gateway.host, config.gateway.port),
                         ("simulator (control API)", config.gateway.host, control)]
        plan.notes.append(f"Simulator    {gateway} (TWS API), control http://{sim_host}:{control}")

    ex_host, ex_port = config.exporter_host_port
    exporter_addr = f"{loopback(ex_host)}:{ex_port}"
    exporter_argv = gatewatch_command("exporter")
    if config_path is not None:
        exporter_argv += ["--config", str(config_path)]
    plan.processes.append(Process("exporter", exporter_argv, logs / "exporter.log",
                                  ready_url=f"http://{exporter_addr}/healthz", own_session=True,
                                  stop_grace=exporter_stop_grace(config)))
    plan.listens.append(("exporter", ex_host, ex_port))
    plan.notes.append(f"Exporter     http://{exporter_addr}/metrics  /healthz")
    proxy_addr = _plan_proxy(config, config_path, environ, logs, plan)

    if not args.with_prometheus:
        plan.notes.append("Prometheus   not started (--no-prometheus)")
    elif find_binary(("prometheus",)) is None:
        plan.notes.append("Prometheus   not started: no 'prometheus' on PATH (Debian: apt-get install prometheus)")
    else:
        am_addr = _plan_alertmanager(args, environ, data_dir, plan)
        prom_host, prom_port = split_host_port(args.prometheus_listen, field="--prometheus-listen")
        prom_addr = f"{loopback(prom_host)}:{prom_port}"
        timing = configs.SHIPPED
        if args.scrape_interval:
            try:
                timing = configs.Timing(interval=parse_duration(args.scrape_interval))
            except ValueError as exc:
                raise ConfigError(f"--scrape-interval: {exc}") from exc
        config_file = configs.render_prometheus_config(data_dir / "prometheus", exporter=exporter_addr,
                                                       prometheus=prom_addr, alertmanager=am_addr, timing=timing,
                                                       proxy=proxy_addr)
        plan.processes.append(Process("prometheus", prometheus_argv(
            config_file, data_dir / "prometheus" / "data", f"{prom_host}:{prom_port}"),
            logs / "prometheus.log", ready_url=f"http://{prom_addr}/-/ready", own_session=True))
        plan.listens.append(("Prometheus", prom_host, prom_port))
        plan.notes.append(f"Prometheus   http://{prom_addr}")
    plan.notes.append("Grafana      not available natively (no package here): run docker compose, or import "
                      f"{ROOT / 'grafana' / 'dashboards'}/*.json into a Grafana whose Prometheus datasource "
                      "has uid 'prometheus'")
    plan.notes.append(f"Logs         {logs}/NAME.log")
    return plan


EXAMPLE_BOT_CLIENT_ID = 11


def _plan_proxy(config: GatewatchConfig, config_path: Path | None, environ: dict[str, str], logs: Path,
                plan: Plan) -> str:
    """``gatewatch proxy`` (the bot's path), and examples/bot.py through it when the Gateway is the
    simulator (never against a real Gateway: the example bot places orders). Returns /metrics' address."""
    pc = config.proxy
    m_host, m_port = split_host_port(pc.metrics_listen, field="proxy.metrics_listen")
    l_host, l_port = split_host_port(pc.listen, field="proxy.listen")
    metrics = f"{loopback(m_host)}:{m_port}"
    argv = gatewatch_command("proxy") + (["--config", str(config_path)] if config_path is not None else [])
    plan.processes.append(Process("proxy", argv, logs / "proxy.log", ready_url=f"http://{metrics}/healthz",
                                  own_session=True))
    plan.listens += [("proxy (bot)", l_host, l_port), ("proxy (metrics)", m_host, m_port)]
    control = ""
    if pc.control_port:
        plan.listens.append(("proxy (faults)", l_host, pc.control_port))
        control = f", faults http://{loopback(l_host)}:{pc.control_port}"
    plan.notes.append(f"Proxy        bot -> {pc.listen} -> Gateway, http://{metrics}/metrics{control}")
    if not environ.get(GATEWAY_ENV):
        plan.processes.append(Process("bot", [
            sys.executable, str(ROOT / "examples" / "bot.py"), "--host", loopback(l_host), "--port", str(l_port),
            "--client-id", str(EXAMPLE_BOT_CLIENT_ID), "--symbols", ",".join(config.probes.symbols),
            "--order-every", "60"], logs / "bot.log", own_session=True))
        plan.notes.append(f"Example bot  examples/bot.py through the proxy (client id {EXAMPLE_BOT_CLIENT_ID}; "
                          "simulator only)")
    return metrics


def _plan_alertmanager(args: argparse.Namespace, environ: dict[str, str], data_dir: Path, plan: Plan) -> str | None:
    if find_binary(ALERTMANAGER_BINARIES) is None:
        plan.notes.append("Alertmanager not started: no prometheus-alertmanager/alertmanager on PATH "
                          "(Debian: apt-get install prometheus-alertmanager); alerts go nowhere")
        return None
    host, port = split_host_port(args.alertmanager_listen, field="--alertmanager-listen")
    addr = f"{loopback(host)}:{port}"
    folder = data_dir / "alertmanager"
    smtp = configs.smtp_settings(environ)
    if smtp is None:
        mailbox = data_dir / "mail" / "alerts.mbox"
        plan.mail_sink = MailSink(mailbox_path=mailbox)
        smtp = configs.local_smtp_settings(plan.mail_sink.host, plan.mail_sink.port, folder / "no_password")
        delivery = (f"local mailbox {mailbox} (no SMTP settings; read it with `mail -f {mailbox}` or any mail "
                    f"reader; set {', '.join(configs.SMTP_VARIABLES)} to mail the operator)")
    else:
        delivery = (f"e-mail via {smtp.get('GATEWATCH_SMTP_SMARTHOST', '?')} "
                    f"to {smtp.get('GATEWATCH_ALERT_EMAIL_TO', '?')}")
    config_file = configs.render_alertmanager_config(folder, smtp)
    plan.processes.append(Process("alertmanager", alertmanager_argv(config_file, folder / "data", f"{host}:{port}"),
                                  data_dir / "logs" / "alertmanager.log", ready_url=f"http://{addr}/-/ready",
                                  own_session=True))
    plan.listens.append(("Alertmanager", host, port))
    plan.notes.append(f"Alertmanager http://{addr} -> {delivery}")
    return addr


def check_ports_free(listens: list[tuple[str, str, int]]) -> None:
    """StartError naming the part and the address when something already listens where a part would."""
    for part, host, port in listens:
        if port_in_use(host or "0.0.0.0", port):
            raise StartError(f"{part}: {host}:{port} is already in use by another process; stop it or choose "
                             "another port (configuration or command-line option)")


def run(args: argparse.Namespace) -> int:
    config_path = Path(args.config).resolve() if args.config else None
    config = load_config(config_path)
    setup_logging(config.exporter.log_level, config.exporter.log_json)
    duration = parse_stack_duration(args.duration)
    plan = plan_stack(args, config, config_path, dict(os.environ))
    supervisor = Supervisor(plan.processes)

    def on_signal(signum: int, _frame: object) -> None:
        # State first, the log line last: loguru refuses (RuntimeError) if this interrupted one of its writes.
        if supervisor.stopping.is_set():  # a second request: no more waiting (the exporter's unwind is cut)
            supervisor.kill_all_now()
            with contextlib.suppress(RuntimeError):
                logger.warning("{} received again: killing every part now", signal.Signals(signum).name)
            return
        supervisor.stopping.set()
        with contextlib.suppress(RuntimeError):
            logger.info("{} received: stopping the stack (send it again to kill every part at once)",
                        signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            check_ports_free(plan.listens)
            if plan.mail_sink is not None:
                plan.mail_sink.start()
            supervisor.start_all(START_TIMEOUT)
        except StartError as exc:
            if supervisor.stopping.is_set():
                return 0
            print(f"gatewatch stack: could not start: {exc}", file=sys.stderr, flush=True)
            return 1
        print("gatewatch stack is up:\n  " + "\n  ".join(plan.notes), flush=True)
        supervisor.run(duration)
    finally:
        supervisor.stop_all()
        if plan.mail_sink is not None:
            plan.mail_sink.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
