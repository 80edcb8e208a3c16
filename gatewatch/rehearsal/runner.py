"""The rehearsal itself: start the stack, play the timeline, watch, judge, tear down.

Order of events: Alertmanager and Prometheus (when their binaries are installed) → simulator (it
starts playing the scenario at once) → exporter with scheduled active probes → the session window
opens once the exporter is connected and scraped and no start-up alert is still firing → progress
lines until the window closes → wait for the last probe run to settle → evidence and verdict from
Prometheus, ledger checks from the simulator's books → everything stopped, last started first.
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from loguru import logger

from gatewatch.config import GATEWAY_ENV, GatewatchConfig
from gatewatch.evidence.prometheus_api import PrometheusClient, PrometheusError
from gatewatch.localstack.configs import REPO_ROOT
from gatewatch.localstack.net import free_ports
from gatewatch.localstack.process import Process, child_environment, gatewatch_command, start_exporter
from gatewatch.localstack.servers import (
    ALERTMANAGER_BINARIES,
    PROMETHEUS_BINARIES,
    alertmanager_argv,
    find_binary,
    prometheus_argv,
)
from gatewatch.localstack.smtp import MailSink
from gatewatch.rehearsal import configs, observe
from gatewatch.rehearsal.checks import LedgerCheck, check_ledger, open_probe_orders, probe_positions
from gatewatch.rehearsal.timeline import TimedFault, fired_by, load_timeline, time_scale_for, write_timeline
from probes.active.runner import exporter_stop_grace

DEFAULT_SYMBOLS = ["SPY", "QQQ", "IWM"]
CHILD_ENV_DROPPED = (GATEWAY_ENV, "GATEWATCH_SMTP_*", "GATEWATCH_ALERT_*")
"""What the operator's environment must not tell the rehearsal's processes: which Gateway to watch
(a rehearsal only ever watches its own simulator) and where to send mail (it never pages anyone)."""
STARTUP_ALERTS = "ExporterDown|GatewayDown"
"""Alerts that fire while the stack starts (Prometheus is up before the exporter is): the window
opens only once they have cleared, so they never count against the session."""


@dataclass
class RehearsalOptions:
    """What the operator (or a test) asks for."""

    duration: float
    scenario: Path
    out_dir: Path
    config: Path | None = None
    time_scale: float | None = None
    progress_every: float = 5.0
    seed: int = 1
    tick_hz: float = 4.0
    symbols: list[str] = field(default_factory=lambda: list(DEFAULT_SYMBOLS))
    account: str = "DU1234567"
    use_prometheus: bool = True
    market: str = "open"
    settle_timeout: float = 30.0
    bot: bool = True  # examples/bot.py through gatewatch proxy
    proxy_scenario: Path | None = None  # faults on the bot's path (proxy scenario format)


@dataclass
class RehearsalResult:
    """The outcome: the session verdict, the failed gates and the after-run ledger check."""

    passed: bool | None
    failed_gates: list[str]
    ledger: LedgerCheck
    window: tuple[float, float]
    faults_fired: list[str]
    mails: int
    evidence_dir: Path | None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": {True: "pass", False: "fail", None: "none"}[self.passed],
            "failed_gates": self.failed_gates,
            "window": {"start": self.window[0], "end": self.window[1]},
            "faults_fired": self.faults_fired,
            "alert_mails": self.mails,
            "ledger": self.ledger.to_json(),
            "evidence": str(self.evidence_dir) if self.evidence_dir else None,
            "notes": self.notes,
        }


class RehearsalStopped(Exception):
    """A stop was requested (:attr:`Rehearsal.stopping`) while the rehearsal started or played."""


class Rehearsal:
    """``with Rehearsal(options) as r: r.start(); r.play(); result = r.finish()``."""

    def __init__(self, options: RehearsalOptions) -> None:
        self.options = options
        self.out = options.out_dir
        self.scale = time_scale_for(options.duration, options.time_scale)
        self.timeline: list[TimedFault] = load_timeline(options.scenario, options.symbols, self.scale)
        self.ports = configs.Ports(*free_ports(9))
        self.config: GatewatchConfig = configs.gatewatch_config(
            options.config, self.ports, options.duration, self.out, options.symbols, options.account)
        self.config_path = self.out / "gatewatch.yaml"
        self.env = child_environment(drop=CHILD_ENV_DROPPED)
        self.sim: Process | None = None
        self.exporter: Process | None = None
        self.proxy: Process | None = None
        self.bot: Process | None = None
        self.prometheus: Process | None = None
        self.alertmanager: Process | None = None
        self.mail: MailSink | None = None
        self.window_start = 0.0
        self.window_end = 0.0
        self.exporter_restarts = 0
        self.stopping = threading.Event()
        """Set by a stop request (``gatewatch rehearse`` on SIGTERM/SIGINT): the waits and the play
        loop end with :class:`RehearsalStopped`, so the caller stops the parts in order."""

    # ------------------------------------------------------------------ endpoints
    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.exporter}/metrics"

    @property
    def prometheus_url(self) -> str | None:
        return f"http://127.0.0.1:{self.ports.prometheus}" if self.prometheus else None

    @property
    def order_ref_prefix(self) -> str:
        return self.config.active.order_ref_prefix

    @property
    def journal_path(self) -> Path:
        return Path(self.config.active.journal_path)

    def sim_state(self) -> dict[str, Any]:
        return observe.sim_state(self.ports.control)

    def sim_elapsed(self) -> float:
        return time.time() - (self.sim.started_at if self.sim else time.time())

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Rehearsal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, ready_timeout: float = 60.0) -> None:
        """Start everything and open the session window once the exporter is connected and scraped."""
        self.out.mkdir(parents=True, exist_ok=True)
        scenario_path = write_timeline(self.timeline, self.out / "scenario.scaled.yaml")
        configs.write_gatewatch_config(self.config, self.config_path)
        logs = self.out / "logs"
        o = self.options
        if o.use_prometheus and self._stack_binaries_present():
            self._start_alerting()
        else:
            logger.warning("prometheus/prometheus-alertmanager not on PATH: no alerts and no verdict")
        self.sim = Process("simulator", gatewatch_command(
            "sim", "--port", str(self.ports.gateway), "--control-port", str(self.ports.control),
            "--account", o.account, "--seed", str(o.seed), "--scenario", str(scenario_path),
            "--symbols", ",".join(o.symbols), "--tick-hz", f"{o.tick_hz:g}", "--market", o.market),
            logs / "simulator.log", env=self.env, ready_url=f"http://127.0.0.1:{self.ports.control}/healthz",
            own_session=True).start()
        self.sim.wait_ready(20, self.stopping)
        self.start_exporter()
        if o.bot:
            self.start_bot()
        self._wait_connected_and_scraped(ready_timeout)
        self.window_start = time.time()
        self.window_end = self.window_start + o.duration
        first = self.timeline[0].at - self.sim_elapsed() if self.timeline else None
        logger.info("rehearsal window opened: {:g}s, {} fault(s) at time scale {:.3g}{}", o.duration,
                    len(self.timeline), self.scale, f", first in {first:.1f}s" if first is not None else "")

    def start_exporter(self) -> Process:
        self.exporter = start_exporter(self.config_path, self.ports.exporter, self.out / "logs" / "exporter.log",
                                       env=self.env, stop_grace=exporter_stop_grace(self.config))
        return self.exporter

    def start_bot(self) -> None:
        """gatewatch proxy in front of the simulator, and the example bot through it.

        The bot places a 1-share round trip a few times per session, except when the scenario
        aims a fault at "the next order" (it must reach the probe it is meant for).
        """
        argv = ["proxy", "--config", str(self.config_path)]
        if self.options.proxy_scenario is not None:
            from proxy.faults import load_scenario, scaled

            scaled_path = self.out / "proxy-scenario.scaled.yaml"
            scaled_path.write_text(yaml.safe_dump(scaled(load_scenario(self.options.proxy_scenario), self.scale),
                                                  sort_keys=False), encoding="utf-8")
            argv += ["--scenario", str(scaled_path)]
        self.proxy = Process("proxy", gatewatch_command(*argv), self.out / "logs" / "proxy.log", env=self.env,
                             ready_url=f"http://127.0.0.1:{self.ports.proxy_metrics}/healthz", own_session=True).start()
        self.proxy.wait_ready(30, self.stopping)
        order_faults = {"reject_next_order", "partial_fill_next_order"}
        every = 0.0 if any(f.name in order_faults for f in self.timeline) else max(10.0, self.options.duration / 4)
        self.bot = Process("bot", [
            sys.executable, str(REPO_ROOT / "examples" / "bot.py"), "--port", str(self.ports.proxy),
            "--client-id", str(configs.EXAMPLE_BOT_CLIENT_ID), "--symbols", ",".join(self.options.symbols),
            "--order-every", f"{every:g}", "--max-backoff", "2"], self.out / "logs" / "bot.log", env=self.env,
            own_session=True).start()

    def kill_exporter(self) -> None:
        """SIGKILL the exporter: no clean-up, whatever it was doing (the crash-recovery test)."""
        if self.exporter:
            self.exporter.kill()

    def restart_exporter(self) -> Process:
        self.exporter_restarts += 1
        return self.start_exporter()

    def _stack_binaries_present(self) -> bool:
        return all(find_binary(names) for names in (PROMETHEUS_BINARIES, ALERTMANAGER_BINARIES))

    @property
    def prometheus_data(self) -> Path:
        """Where the rehearsal's Prometheus keeps its data (``gatewatch evidence --prometheus-data``)."""
        return self.out / "prometheus-data"

    def _start_alerting(self) -> None:
        """The local stack's Alertmanager and Prometheus on the shipped files, time compressed."""
        self.mail = MailSink(self.ports.smtp, mailbox_path=self.out / "mail" / "alerts.mbox")
        self.mail.start()
        am_config = configs.write_alertmanager_config(self.ports, self.scale, self.options.duration, self.out)
        am_addr = f"127.0.0.1:{self.ports.alertmanager}"
        self.alertmanager = Process("alertmanager", alertmanager_argv(am_config, self.out / "alertmanager-data",
                                                                      am_addr),
                                    self.out / "logs" / "alertmanager.log", env=self.env,
                                    ready_url=f"http://{am_addr}/-/ready", own_session=True).start()
        prom_config = configs.write_prometheus_config(self.ports, self.scale, self.options.duration, self.out,
                                                    market_always_open=self.options.market == "open")
        prom_addr = f"127.0.0.1:{self.ports.prometheus}"
        self.prometheus = Process("prometheus", prometheus_argv(prom_config, self.prometheus_data, prom_addr),
                                  self.out / "logs" / "prometheus.log", env=self.env,
                                  ready_url=f"http://{prom_addr}/-/ready", own_session=True).start()
        self.alertmanager.wait_ready(30, self.stopping)
        self.prometheus.wait_ready(30, self.stopping)

    def _wait_connected_and_scraped(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._raise_if_stopping()
            if self.exporter and not self.exporter.alive():
                raise RuntimeError(f"the exporter exited:\n{self.exporter.log_tail()}")
            try:
                connected = observe.scrape(self.metrics_url).get("gatewatch_gateway_connected", 0.0) == 1.0
                scraped = self.prometheus_url is None or self._prometheus_sees_exporter()
            except (OSError, ValueError):
                connected = scraped = False
            if connected and scraped:
                return
            time.sleep(0.2)
        raise TimeoutError(f"the exporter was not connected and scraped within {timeout:g}s")

    def _prometheus_sees_exporter(self) -> bool:
        """Scraped, connected, and no critical alert left over from the start-up (ExporterDown
        fires while Prometheus waits for the exporter; it must not count against the session)."""
        assert self.prometheus_url is not None
        client = PrometheusClient(self.prometheus_url, timeout=2)
        try:
            result = client.query('min(up{job="gatewatch"}) * min(gatewatch_gateway_connected)', time.time())
            startup_alerts = client.query(f'ALERTS{{alertname=~"{STARTUP_ALERTS}"}}', time.time())
        except PrometheusError:
            return False
        return bool(result) and result[0][1] == 1.0 and not startup_alerts

    # ------------------------------------------------------------------ running
    def play(self, on_tick: Callable[[Rehearsal], None] | None = None, tick: float = 0.5) -> None:
        """Run until the window closes, printing a progress line every ``progress_every`` seconds."""
        next_line = time.time()
        while (now := time.time()) < self.window_end:
            self._raise_if_stopping()
            if on_tick is not None:
                on_tick(self)
            if now >= next_line:
                print(self.progress_line(), flush=True)
                next_line = now + self.options.progress_every
            self.stopping.wait(min(tick, max(0.0, self.window_end - time.time())))
        print(self.progress_line(), flush=True)

    def _raise_if_stopping(self) -> None:
        if self.stopping.is_set():
            raise RehearsalStopped("stop requested")

    def progress_line(self) -> str:
        now = time.time()
        elapsed, remaining = now - self.window_start, max(0.0, self.window_end - now)
        fired = fired_by(self.timeline, self.sim_elapsed())
        parts = [f"[{_clock(elapsed)} elapsed, {_clock(remaining)} left]"]
        try:
            m = observe.scrape(self.metrics_url)
            connected = m.get("gatewatch_gateway_connected")
            runs = m.total("gatewatch_probe_runs_total", kind="active")
            failed = m.total("gatewatch_probe_runs_total", kind="active", result="failure")
            parts += [f"connected={'yes' if connected == 1 else 'NO'}",
                      f"probe runs={runs:g}" + (f" ({failed:g} failed)" if failed else "")]
        except (OSError, ValueError) as exc:
            parts.append(f"exporter UNREACHABLE ({exc})")
        last = f" (last: {fired[-1].describe()})" if fired else ""
        parts.append(f"faults={len(fired)}/{len(self.timeline)}{last}")
        if self.prometheus_url:
            try:
                alerts = observe.firing_alerts(self.prometheus_url)
                parts.append(f"alerts firing={','.join(alerts) if alerts else 'none'}")
            except (OSError, ValueError):
                parts.append("alerts=?")
        return "  ".join(parts)

    def settle(self) -> None:
        """Give an in-flight probe run time to finish and clean up before the books are checked."""
        deadline = time.monotonic() + self.options.settle_timeout
        prefix = self.order_ref_prefix
        while time.monotonic() < deadline:
            try:
                state = self.sim_state()
            except (OSError, ValueError):
                time.sleep(0.5)
                continue
            if not open_probe_orders(state, prefix) and not probe_positions(state, prefix):
                return
            time.sleep(0.5)
        logger.warning("probe orders or positions still open {:g}s after the window closed",
                       self.options.settle_timeout)

    def finish(self) -> RehearsalResult:
        """Settle, judge the session, check the books, write rehearsal.json and print the verdict."""
        self.settle()
        # The books right after they settled: the exporter's schedule goes on, and a probe run that
        # starts while the evidence is collected (seconds) would show its own working order.
        ledger = check_ledger(self.sim_state(), self.order_ref_prefix, self.journal_path)
        notes: list[str] = []
        passed: bool | None = None
        failed: list[str] = []
        evidence_dir: Path | None = None
        if self.prometheus_url:
            passed, failed, evidence_dir = self._evidence(notes)
        else:
            why = "not installed" if self.options.use_prometheus else "not used in this run"
            notes.append(f"no verdict: Prometheus and Alertmanager are {why}")
        result = RehearsalResult(passed, failed, ledger, (self.window_start, self.window_end),
                                 [f.describe() for f in fired_by(self.timeline, self.sim_elapsed())],
                                 len(self.mail.mails) if self.mail else 0, evidence_dir, notes)
        (self.out / "rehearsal.json").write_text(json.dumps(result.to_json(), indent=2, default=str))
        self._print_summary(result)
        return result

    def _evidence(self, notes: list[str]) -> tuple[bool, list[str], Path]:
        from gatewatch.evidence.bundle import write_bundle
        from gatewatch.evidence.collect import collect
        from gatewatch.evidence.gates import session_gates
        from gatewatch.evidence.model import Window
        from gatewatch.evidence.subject import describe_subject, prometheus_in_words

        assert self.prometheus_url is not None
        # one evaluation interval so the last samples are in Prometheus before the query
        time.sleep(configs.scrape_interval_for(self.options.duration) * 2)
        client = PrometheusClient(self.prometheus_url)
        window = Window(self.window_start, self.window_end)
        evidence = collect(client, session_gates(self.config), window, self.config)
        evidence.subject = describe_subject(client, window, self.config, config_file=None, kind="rehearsal",
                                            prometheus_text=prometheus_in_words(client, None))
        folder = self.out / "evidence"
        try:
            write_bundle(evidence, folder)
        except Exception as exc:  # the verdict stands even if a chart cannot be drawn
            logger.error("the evidence bundle could not be written completely: {!r}", exc)
            notes.append(f"evidence bundle incomplete: {exc!r}")
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "verdict.json").write_text(json.dumps(evidence.verdict_json(), indent=2, default=str))
        return evidence.passed, [g.id for g in evidence.gates if not g.passed], folder

    def _print_summary(self, result: RehearsalResult) -> None:
        verdict = {True: "PASS", False: "FAIL", None: "NONE"}[result.passed]
        print(f"verdict: {verdict}" + (f" (failed gates: {', '.join(result.failed_gates)})"
                                       if result.failed_gates else ""))
        print(f"faults fired: {len(result.faults_fired)}/{len(self.timeline)}; alert e-mails: {result.mails}")
        ledger = result.ledger
        print(f"probe orders at the broker: {ledger.probe_orders} (journal: {ledger.journal_orders}); "
              + ("books clean" if not ledger.problems else "; ".join(ledger.problems)))
        for note in result.notes:
            print(f"note: {note}")
        if result.evidence_dir:
            print(f"evidence: {result.evidence_dir / 'report.html'}")
        if self.prometheus is not None:
            print("evidence again later, from the data alone: gatewatch evidence --prometheus-data "
                  f"{self.prometheus_data} --from {self.window_start:.3f} --to {self.window_end:.3f} "
                  f"--config {self.config_path} --out {self.out / 'evidence-again'}")
        print(f"rehearsal record: {self.out / 'rehearsal.json'}")

    def stop_exporter(self) -> None:
        """SIGTERM the exporter and wait for its unwind (its active probes cancel and close)."""
        if self.exporter is not None:
            self.exporter.stop()

    def kill_all(self) -> None:
        """SIGKILL every part at once, without waiting (a second stop request); :meth:`stop` then reaps them."""
        for process in (self.bot, self.proxy, self.prometheus, self.alertmanager, self.exporter, self.sim):
            if process is not None:
                process.kill_now()

    def stop(self) -> None:
        """Stop everything, last started first; safe to call twice."""
        for process in (self.bot, self.proxy, self.prometheus, self.alertmanager, self.exporter, self.sim):
            if process is not None:
                process.stop()
        if self.mail is not None:
            self.mail.stop()
            self.mail = None


def _clock(seconds: float) -> str:
    seconds = max(0, math.floor(seconds))
    return f"{seconds // 60:02d}:{seconds % 60:02d}"
