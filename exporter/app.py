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

from exporter.collectors import PassiveFamilies
from exporter.http_server import MetricsServer
from exporter.metrics import Metrics
from gatewatch.config import GatewatchConfig
from gatewatch.ib.connect import connect_bound
from probes.gateway import CurrentTimeRequester, GatewaySession
from probes.outcome import ProbeRecorder
from probes.passive.base import PassiveContext, PassiveProbe, run_periodically
from probes.passive.process import ProcessProbe
from probes.passive.quotes import QuotesProbe
from probes.passive.reconciliation import ReconciliationProbe
from probes.passive.registry import build_passive_probes


def _version() -> str:
    try:
        return metadata.version("gatewatch")
    except metadata.PackageNotFoundError:
        return "unknown"


TaskFactory = Callable[[GatewatchConfig, Metrics], Coroutine[Any, Any, None]]
PlanEntry = tuple[ProbeRecorder, float, Callable[[], Coroutine[Any, Any, None]], float]


class ExporterApp:
    """Owns everything the exporter runs; ``await app.run()`` until cancelled."""

    def __init__(self, config: GatewatchConfig, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.started_at = time.time()
        self.extra_tasks: list[TaskFactory] = []
        self.unwind_hooks: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self.session = GatewaySession(config.gateway)
        self.time_requester = CurrentTimeRequester(self.session, config.gateway.request_timeout)
        ctx = PassiveContext(self.session, config, self.time_requester, self.metrics)
        self.probes: dict[str, PassiveProbe] = build_passive_probes(ctx)
        self.metrics.add_source(PassiveFamilies(self.session, self.probes, (_version(), self.session.address)))
        process = self.probes.get("process")
        if isinstance(process, ProcessProbe):  # process figures are read at scrape time
            self.metrics.on_scrape.append(process.read)
        if config.active.enabled:  # scheduled active paper-order probes (owned by probes/active/)
            from probes.active.schedule import exporter_task

            # The schedule judges market hours as the quotes probe does: the contract's own hours.
            schedule = exporter_task(self.quotes.market_hours)
            self.extra_tasks.append(schedule)
            self.unwind_hooks.append(schedule.unwind)  # a stop lets it cancel and close first
        self.server: MetricsServer | None = None

    @property
    def quotes(self) -> QuotesProbe:
        probe = self.probes["quotes"]
        assert isinstance(probe, QuotesProbe)
        return probe

    @property
    def reconciliation(self) -> ReconciliationProbe:
        probe = self.probes["reconciliation"]
        assert isinstance(probe, ReconciliationProbe)
        return probe

    def schedule(self) -> list[PlanEntry]:
        """(recorder, interval, run_once, timeout) for every periodic probe (disabled ones left out)."""
        plan: list[PlanEntry] = []
        for probe in self.probes.values():
            when = probe.schedule()
            if when is not None:
                plan.append((probe.recorder, when.interval, probe.run_once, when.timeout))
        return plan

    def start_http(self, host: str | None = None, port: int | None = None) -> MetricsServer:
        """Start /metrics and /healthz (default: the configured listen address)."""
        cfg_host, cfg_port = self.config.exporter_host_port
        self.server = MetricsServer(host or cfg_host, cfg_port if port is None else port,
                                    self.metrics.render, self.health)
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
                for r in self.metrics.outcomes if r.kind == "passive"
            },
        }

    async def run(self) -> None:
        """Run the session and every probe until cancelled; tidy up on the way out."""
        tasks = [asyncio.create_task(self.session.run(), name="gateway-session")]
        try:
            # Let the first connection attempt finish, so probes do not all start with "not connected".
            # asyncio.wait, not wait_for: on Python 3.11 wait_for returns normally when a stop (a
            # SIGTERM) lands in the step the attempt ends in, and the exporter would then run on.
            first = asyncio.ensure_future(self.session.first_attempt_done.wait())
            try:
                await asyncio.wait([first], timeout=connect_bound(self.config.gateway) + 1)
            finally:
                first.cancel()
            for recorder, interval, run_once, timeout in self.schedule():
                runs = run_periodically(recorder, interval, run_once, timeout=timeout,
                                        sleep_until=self.session.sleep_until)
                tasks.append(asyncio.create_task(runs, name=f"probe-{recorder.probe}"))
            for factory in self.extra_tasks:
                tasks.append(asyncio.create_task(factory(self.config, self.metrics)))
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(*tasks, return_exceptions=True)
            self.session.close()

    async def unwind(self) -> None:
        """Before a stop: let each extra task finish what it holds (the active probes' orders)."""
        await asyncio.gather(*(hook() for hook in self.unwind_hooks), return_exceptions=True)

    def stop_http(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
