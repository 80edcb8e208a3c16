"""Run the real exporter in-process against the real simulator, and scrape it over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from exporter.app import ExporterApp
from gatewatch.config import GatewatchConfig

FAST_CONFIG: dict[str, Any] = {
    "gateway": {"connect_timeout": 2, "request_timeout": 1.5, "reconnect_initial": 0.2,
                "reconnect_max": 1, "reconnect_jitter": 0.1},
    "probes": {"heartbeat_interval": 1, "clock_interval": 1.2, "account_interval": 0.5,
               "reconciliation_interval": 1, "process_interval": 1, "quote_stale_after": 2,
               "historical": {"interval": 15, "timeout": 3,
                              "duration": "2 D"}},  # a whole day of bars at any hour of the day
}


def fast_config(port: int, **probes: Any) -> GatewatchConfig:
    raw: dict[str, Any] = {k: dict(v) for k, v in FAST_CONFIG.items()}
    raw["gateway"]["port"] = port
    raw["probes"].update(probes)
    return GatewatchConfig.model_validate(raw)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


@dataclass
class RunningExporter:
    app: ExporterApp
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def get(self, path: str) -> tuple[int, str]:
        def fetch() -> tuple[int, str]:
            with urllib.request.urlopen(self.url + path, timeout=5) as resp:
                return resp.status, resp.read().decode()
        return await asyncio.to_thread(fetch)

    async def scrape(self) -> Samples:
        return parse((await self.get("/metrics"))[1])

    async def value(self, name: str, **labels: str) -> float | None:
        return (await self.scrape()).get((name, frozenset(labels.items())))

    async def wait_for(self, name: str, predicate: Callable[[float], bool], timeout: float = 10.0,
                       **labels: str) -> float:
        """Scrape until the sample satisfies ``predicate``; fail with the last value seen."""
        deadline = time.monotonic() + timeout
        last: float | None = None
        while time.monotonic() < deadline:
            last = await self.value(name, **labels)
            if last is not None and predicate(last):
                return last
            await asyncio.sleep(0.1)
        raise AssertionError(f"{name}{labels} never satisfied the condition within {timeout} s (last: {last})")


@contextlib.asynccontextmanager
async def running_exporter(config: GatewatchConfig) -> AsyncIterator[RunningExporter]:
    app = ExporterApp(config)
    server = app.start_http("127.0.0.1", 0)
    task = asyncio.create_task(app.run())
    try:
        yield RunningExporter(app, server.port)
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        app.stop_http()
