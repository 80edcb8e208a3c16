"""Issue 16: what runs between scrapes. Process figures are read when scraped; the heartbeat rides
on the clock probe's time requests and sends its own only when none was answered since its last run."""

from __future__ import annotations

import asyncio
import threading

from support.exporter import fast_config, running_exporter

from exporter.app import ExporterApp
from gatewatch.config import GatewatchConfig

RUNS = "gatewatch_probe_runs_total"


def _app(interval: float) -> ExporterApp:
    return ExporterApp(GatewatchConfig.model_validate({"probes": {
        "process_interval": interval,
        "processes": [{"name": "ghost", "cmdline_regex": "no-such-process-[x]yz"}]}}))


def test_process_figures_are_read_at_scrape_time_at_most_once_per_interval() -> None:
    app = _app(60)
    assert "process" not in [recorder.probe for recorder, *_ in app.schedule()], "no periodic process run"
    sample = app.metrics.registry.get_sample_value
    assert sample(RUNS, {"probe": "process", "kind": "passive", "result": "failure"}) == 1, "read by this scrape"
    assert sample("gatewatch_process_resident_memory_bytes", {"process": "exporter"}) > 10e6  # type: ignore[operator]
    assert sample("gatewatch_process_up", {"process": "ghost"}) == 0
    assert sample("gatewatch_probe_success", {"probe": "process", "kind": "passive"}) == 0
    threads = [threading.Thread(target=app.metrics.render) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sample(RUNS, {"probe": "process", "kind": "passive", "result": "failure"}) == 1, (
        "a reading younger than process_interval is served again, however many scrape")


async def test_process_reading_counts_the_loops_tasks_from_the_scrape_thread() -> None:
    app = _app(0.01)
    app.schedule()  # on the loop, as the exporter's start calls it
    tasks = await asyncio.to_thread(app.metrics.registry.get_sample_value, "gatewatch_exporter_asyncio_tasks")
    assert tasks is not None and tasks >= 1
    await asyncio.sleep(0.02)
    await asyncio.to_thread(app.metrics.render)
    runs = app.metrics.registry.get_sample_value(RUNS, {"probe": "process", "kind": "passive", "result": "failure"})
    assert runs is not None and runs >= 2, "an older reading is replaced at the next scrape"


async def _requests_and_runs(port: int, heartbeat_interval: float, clock_interval: float) -> tuple[float, float, float]:
    """Time requests answered, heartbeat runs and clock runs over 7 s."""
    config = fast_config(port, heartbeat_interval=heartbeat_interval, clock_interval=clock_interval)
    async with running_exporter(config) as running:
        await running.wait_for("gatewatch_heartbeat_rtt_seconds_count", lambda v: v >= 1)

        async def counts() -> tuple[float, float, float]:
            samples = await running.scrape()
            runs = {probe: sum(v for (name, labels), v in samples.items()
                               if name == RUNS and ("probe", probe) in labels) for probe in ("heartbeat", "clock")}
            answered = samples[("gatewatch_heartbeat_rtt_seconds_count", frozenset())]
            return answered, runs["heartbeat"], runs["clock"]

        before = await counts()
        await asyncio.sleep(7)
        after = await counts()
    answered, heartbeat, clock = (a - b for a, b in zip(after, before, strict=True))
    return answered, heartbeat, clock


async def test_heartbeat_sends_its_own_request_every_run_when_nothing_else_asks(sim: object) -> None:
    answered, heartbeat, clock = await _requests_and_runs(sim.port, 1.2, 60)  # type: ignore[attr-defined]
    # About 6 heartbeat runs in 7 s; a loaded machine delays some, and a run's answer may be in flight
    # at either end of the window. The clock probe (60 s) seldom runs here, but its first run, or a
    # retry on a loaded machine, may fall inside: its answers are subtracted. A heartbeat that never
    # asks itself leaves no request of its own.
    assert heartbeat >= 3, (answered, heartbeat, clock)
    assert answered - clock >= heartbeat - 2, f"{answered - clock} own requests in {heartbeat} heartbeat runs"


async def test_heartbeat_rides_on_the_clock_probes_requests(sim: object) -> None:
    # Equal intervals, as shipped (5 s each); 1.75 s here keeps the requester's 1.1 s spacing apart.
    answered, heartbeat, clock = await _requests_and_runs(sim.port, 1.75, 1.75)  # type: ignore[attr-defined]
    assert heartbeat >= 3 and clock >= 3, (answered, heartbeat, clock)
    # At most one request of its own (a clock run late on a busy machine); asking every run would be 3+.
    assert answered <= clock + 1 + 1, f"{answered} requests for {clock} clock runs: the heartbeat asked again"
