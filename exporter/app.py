"""Wiring of the exporter: one Gateway session, the passive probes, the HTTP endpoint.

Extra long-running jobs (for example the scheduled active order probes) join through
``ExporterApp.extra_tasks``: a list of ``factory(config, metrics) -> coroutine`` started next to
the passive probes and cancelled with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from importlib import metadata
from typing import Any

from loguru import logger
from prometheus_client import disable_created_metrics

from exporter.http_server import MetricsServer
from exporter.metrics import Metrics
from gatewatch.config import GatewatchConfig
from probes.gateway import CurrentTimeRequester, GatewaySession
from probes.outcome import ProbeRecorder
from probes.passive.account import AccountProbe
from probes.passive.base import run_periodically
from probes.passive.clock import ClockProbe
from probes.passive.connection import ConnectionProbe
from probes.passive.heartbeat import HeartbeatProbe
from probes.passive.historical import HistoricalProbe
from probes.passive.process import ProcessProbe
from probes.passive.quotes import QuotesProbe
from probes.passive.reconciliation import ReconciliationProbe
from probes.passive.risk import RiskProbe


def _version() -> str:
    try:
        return metadata.version("gatewatch")
    except metadata.PackageNotFoundError:
        return "unknown"


TaskFactory = Callable[[GatewatchConfig, Metrics], Coroutine[Any, Any, None]]
QUOTES_INTERVAL = 1.0
CONNECTION_INTERVAL = 1.0


class ExporterApp:
    """Owns everything the exporter runs; ``await app.run()`` until cancelled."""

    def __init__(self, config: GatewatchConfig, metrics: Metrics | None = None) -> None:
        # The *_created series double the series count and nothing here reads them.
        disable_created_metrics()
        self.config = config
        self.metrics = metrics or Metrics()
        self.started_at = time.time()
        self.extra_tasks: list[TaskFactory] = []
        probes_cfg = config.probes
        self.session = GatewaySession(config.gateway)
        self.time_requester = CurrentTimeRequester(self.session, config.gateway.request_timeout)
        m = self.metrics
        m.exporter_info.labels(version=_version(), gateway=self.session.address).set(1)
        self.connection = ConnectionProbe(self.session, m)
        self.account = AccountProbe(self.session, m)
        self.quotes = QuotesProbe(self.session, m, probes_cfg)
        self.heartbeat = HeartbeatProbe(self.session, m, self.time_requester)
        self.clock = ClockProbe(self.session, m, self.time_requester, probes_cfg.clock_interval)
        self.historical = HistoricalProbe(self.session, m, probes_cfg.historical)
        self.reconciliation = ReconciliationProbe(self.session, m, probes_cfg.bot_positions_file)
        self.risk = RiskProbe(self.session, m, self.account, probes_cfg.max_position_ratio)
        self.process = ProcessProbe(m, probes_cfg.processes)
        if config.active.enabled:  # scheduled active paper-order probes (owned by probes/active/)
            from probes.active.schedule import exporter_task

            # The schedule judges market hours as the quotes probe does: the contract's own hours.
            self.extra_tasks.append(exporter_task(self.quotes.market_hours.is_open))
        self.recorders: list[ProbeRecorder] = [
            p.recorder for p in (self.connection, self.account, self.quotes, self.heartbeat, self.clock,
                                 self.historical, self.reconciliation, self.risk, self.process)
        ]
        self.server: MetricsServer | None = None

    def schedule(self) -> list[tuple[ProbeRecorder, float, Callable[[], Coroutine[Any, Any, None]], float]]:
        """(recorder, interval, run_once, timeout) for every periodic probe."""
        p, timeout = self.config.probes, self.config.gateway.request_timeout
        hist = self.config.probes.historical
        plan = [
            (self.connection.recorder, CONNECTION_INTERVAL, self.connection.run_once, timeout),
            (self.account.recorder, p.account_interval, self.account.run_once, timeout),
            (self.quotes.recorder, QUOTES_INTERVAL, self.quotes.run_once, timeout),
            (self.heartbeat.recorder, p.heartbeat_interval, self.heartbeat.run_once, timeout * 2),
            (self.clock.recorder, p.clock_interval, self.clock.run_once, timeout * 2 + p.clock_interval),
            (self.reconciliation.recorder, p.reconciliation_interval, self.reconciliation.run_once,
             timeout * 3),
            (self.risk.recorder, p.account_interval, self.risk.run_once, timeout),
            (self.process.recorder, p.process_interval, self.process.run_once, timeout),
        ]
        if hist.enabled:
            plan.append((self.historical.recorder, hist.interval, self.historical.run_once, hist.timeout + 1))
        return plan

    def start_http(self, host: str | None = None, port: int | None = None) -> MetricsServer:
        """Start /metrics and /healthz (default: the configured listen address)."""
        cfg_host, cfg_port = self.config.exporter_host_port
        self.server = MetricsServer(host or cfg_host, cfg_port if port is None else port,
                                    self.metrics.registry, self.health)
        self.server.start()
        logger.info("serving /metrics and /healthz on http://{}:{}", self.server.host, self.server.port)
        return self.server

    def health(self) -> dict[str, Any]:
        """The /healthz body: always status ok while this process runs; Gateway state alongside."""
        return {
            "status": "ok",
            "uptime_seconds": round(time.time() - self.started_at, 3),
            "gateway": {
                "address": self.session.address,
                "connected": self.session.connected,
                "connected_since": self.session.connected_since,
                "account": self.session.account or None,
                "last_error": self.session.last_error or None,
            },
            "probes": {
                r.probe: {"success": r.status.success, "last_run": r.status.last_run,
                          "reason": r.status.reason or None}
                for r in self.recorders
            },
        }

    async def run(self) -> None:
        """Run the session and every probe until cancelled; tidy up on the way out."""
        tasks = [asyncio.create_task(self.session.run(), name="gateway-session")]
        # Let the first connection attempt finish, so probes do not all start with "not connected".
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.session.first_attempt_done.wait(),
                                   self.config.gateway.connect_timeout * 3 + 1)
        for recorder, interval, run_once, timeout in self.schedule():
            tasks.append(asyncio.create_task(run_periodically(recorder, interval, run_once, timeout=timeout),
                                             name=f"probe-{recorder.probe}"))
        for factory in self.extra_tasks:
            tasks.append(asyncio.create_task(factory(self.config, self.metrics)))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(*tasks, return_exceptions=True)
            self.session.close()

    def stop_http(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
