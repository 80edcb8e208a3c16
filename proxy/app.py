"""Wiring: relay + decoder + paper guard + faults + /metrics and /healthz + control API.

One process of its own, so that restarting the exporter never touches the bot's connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from loguru import logger
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.http_server import MetricsServer
from gatewatch.config import GatewatchConfig
from proxy.collector import ProxyCollector
from proxy.faults import CATALOGUE, ProxyFaults, load_scenario
from proxy.guard import OrderGuard
from proxy.observer import Observer
from proxy.relay import TO_BOT, Connection, Relay, RelayHooks
from simulator.control import ControlServer


class ProxyHooks(RelayHooks):
    """Routes the relay's calls to the decoder, the guard and the faults."""

    def __init__(self, observer: Observer, guard: OrderGuard) -> None:
        self.observer = observer
        self.guard = guard
        self.faults: ProxyFaults | None = None

    def admit(self, peer: str) -> bool:
        if self.faults is not None and not self.faults.admit():
            self.observer.totals.refused_connections += 1
            return False
        return True

    def opened(self, conn: Connection) -> None:
        self.observer.opened(conn)

    def upstream_failed(self, peer: str, error: str) -> None:
        self.observer.totals.upstream_failures += 1

    def closed(self, conn: Connection) -> None:
        self.observer.closed(conn)
        logger.info(
            "bot connection {} (client id {}) closed by the {}", conn.peer, conn.client_id, conn.closed_by
        )

    def filter(self, conn: Connection, direction: str, payloads: list[bytes]) -> list[bytes] | None:
        if direction == TO_BOT:
            return self.faults.filter_to_bot(conn, payloads) if self.faults is not None else None
        if conn.client_id is None:
            self.observer.early_start_api(conn, payloads)
        return self.guard.filter(conn, payloads)

    def observe(self, conn: Connection, direction: str, payloads: list[bytes]) -> None:
        self.observer.observe(conn, direction, payloads)

    def opaque(self, conn: Connection, direction: str, reason: str, nbytes: int) -> None:
        self.observer.totals.undecoded[(direction, reason)] += 1

    def holding(self, conn: Connection) -> bool:
        return self.faults is not None and self.faults.holding()

    async def gate(self, conn: Connection) -> None:
        if self.faults is not None:
            await self.faults.gate(conn)


class ProxyApp:
    """The whole proxy; ``port``/``metrics_port``/``control_port`` are known after :meth:`start`."""

    def __init__(self, config: GatewatchConfig) -> None:
        self.config = config
        pc = config.proxy
        listen = _address(pc.listen, field="proxy.listen")
        upstream = (
            _address(pc.upstream, field="proxy.upstream")
            if pc.upstream
            else (config.gateway.host, config.gateway.port)
        )
        self.observer = Observer(dict(pc.client_names))
        self.guard = OrderGuard(config.gateway, upstream[1], paper_only=pc.paper_only)
        self.hooks = ProxyHooks(self.observer, self.guard)
        self.relay = Relay(listen, upstream, self.hooks)
        self.faults = ProxyFaults(self.relay, self.observer)
        self.hooks.faults = self.faults
        self.registry = CollectorRegistry()
        self.registry.register(
            ProxyCollector(
                self.observer,
                unanswered_after=pc.unanswered_after,
                rate_limit=pc.message_rate_limit,
                extra=self._fault_families,
            )
        )
        self.timeline = load_scenario(pc.scenario) if pc.scenario else []
        self.http: MetricsServer | None = None  # bound in start(): building the app has no side effect
        self.control: ControlServer | None = None
        self.control_port: int | None = None
        self._tasks: list[asyncio.Task[Any]] = []

    @property
    def port(self) -> int:
        return self.relay.port

    @property
    def metrics_port(self) -> int:
        return self.http.port if self.http is not None else 0

    def health(self) -> dict[str, Any]:
        return {
            "ok": True,
            "listen": self.relay.port,
            "upstream": f"{self.relay.upstream[0]}:{self.relay.upstream[1]}",
            "connections": len(self.relay.connections),
            "paper_only": self.guard.paper_only,
        }

    async def start(self) -> None:
        mhost, mport = _address(self.config.proxy.metrics_listen, field="proxy.metrics_listen")
        self.http = MetricsServer(mhost, mport, self.registry, self.health)
        self.http.start()
        await self.relay.start()
        if self.config.proxy.control_port is not None:
            self.control = ControlServer(self.faults)
            self.control_port = await self.control.start(self.relay.listen[0], self.config.proxy.control_port)
            logger.info("proxy control API on http://{}:{}", self.relay.listen[0], self.control_port)
        if self.timeline:
            self._tasks.append(asyncio.create_task(self.faults.run_scenario(self.timeline)))
        if not self.guard.paper_only:
            logger.warning("proxy.paper_only is false: the bot's orders are NOT checked against the paper rule")

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        if self.control is not None:
            await self.control.stop()
        await self.relay.stop()
        if self.http is not None:
            with contextlib.suppress(Exception):
                self.http.stop()

    def _fault_families(self) -> Iterator[Metric]:
        active = GaugeMetricFamily(
            "gatewatch_proxy_fault_active", "1 while a fault is injected on the bot's path.", labels=["fault"]
        )
        injected = CounterMetricFamily(
            "gatewatch_proxy_faults_injected", "Faults injected on the bot's path.", labels=["fault"]
        )
        now_active = {f["fault"] for f in self.faults.set.state()}
        for name in CATALOGUE:
            active.add_metric([name], 1.0 if name in now_active else 0.0)
            injected.add_metric([name], self.faults.injected[name])
        refused = CounterMetricFamily(
            "gatewatch_proxy_connections_refused", "Bot connections refused while a disconnect fault was active."
        )
        refused.add_metric([], self.observer.totals.refused_connections)
        up = GaugeMetricFamily("gatewatch_proxy_start_time_seconds", "Unix time the proxy started.")
        up.add_metric([], self.faults.started)
        yield from (active, injected, refused, up)


def _address(text: str, *, field: str) -> tuple[str, int]:
    """``host:port`` of a validated config field (port 0 allowed: any free port)."""
    host, _, port = text.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)
