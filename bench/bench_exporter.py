"""Exporter figures against the simulator: disconnect detection, memory and CPU, /metrics latency.

Plain script, not a test: timings depend on the machine. Run from the repository root:

    .venv/bin/python bench/bench_exporter.py [--duration 60] [--trials 10] [--scrapes 1000]

Goals: connected gauge at 0 within 0.5 s of the Gateway dropping the socket; exporter RSS < 80 MB
and CPU < 2 % of one core with the default probes; /metrics p99 < 5 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from exporter.app import ExporterApp  # noqa: E402
from gatewatch.config import GatewatchConfig  # noqa: E402
from gatewatch.localstack.net import free_port  # noqa: E402
from gatewatch.logs import setup_logging  # noqa: E402
from simulator import running_simulator  # noqa: E402


async def disconnect_detection(trials: int, renders: int) -> tuple[list[float], list[float]]:
    """Seconds from the simulator dropping the socket to the in-process gauge reading 0; then the
    time to render a populated /metrics body in-process (the exporter's own share of a scrape)."""
    results = []
    render_times = []
    with running_simulator(account="DU1234567", seed=1, market="open") as sim:
        config = GatewatchConfig.model_validate(
            {"gateway": {"port": sim.port, "reconnect_initial": 0.2, "reconnect_max": 0.5}})
        app = ExporterApp(config)
        session = app.session
        task = asyncio.create_task(app.run())
        try:
            for _ in range(trials):
                while not session.connected:
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.5)
                started = time.perf_counter()
                await asyncio.to_thread(sim.inject, {"fault": "drop"})
                while session.connected:
                    await asyncio.sleep(0.005)
                    if time.perf_counter() - started > 5:
                        break
                results.append(time.perf_counter() - started)
            while not session.connected:
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)
            for _ in range(renders):
                t0 = time.perf_counter()
                app.metrics.render()
                render_times.append(time.perf_counter() - t0)
        finally:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
    return results, render_times


def wait_connected(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            if "\ngatewatch_gateway_connected 1.0" in body:
                return
        time.sleep(0.25)
    raise RuntimeError("exporter did not connect to the simulator")


def resource_and_latency(duration: float, scrapes: int) -> tuple[float, float, list[float]]:
    """Run simulator and exporter as processes (as in the stack); measure the exporter process only."""
    sim_port, control_port, listen = free_port(), free_port(), free_port()
    env = {**os.environ, "GATEWATCH_GATEWAY": f"127.0.0.1:{sim_port}"}
    sim = subprocess.Popen([sys.executable, "-m", "simulator", "--port", str(sim_port), "--control-port",
                            str(control_port), "--account", "DU1234567", "--seed", "1"], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    exporter = subprocess.Popen([sys.executable, "-m", "gatewatch", "exporter", "--config",
                                 str(ROOT / "config" / "gatewatch.yaml"), "--listen", f"127.0.0.1:{listen}"],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_connected(listen)
        proc = psutil.Process(exporter.pid)
        cpu_before = sum(proc.cpu_times()[:2])
        started = time.monotonic()
        peak_rss = 0
        while time.monotonic() - started < duration:
            peak_rss = max(peak_rss, proc.memory_info().rss)
            time.sleep(1)
        cpu_share = (sum(proc.cpu_times()[:2]) - cpu_before) / (time.monotonic() - started)
        latencies = []
        # one kept-alive connection, as Prometheus scrapes
        connection = http.client.HTTPConnection("127.0.0.1", listen, timeout=5)
        for _ in range(scrapes):
            t0 = time.perf_counter()
            connection.request("GET", "/metrics")
            connection.getresponse().read()
            latencies.append(time.perf_counter() - t0)
        connection.close()
        return peak_rss / 1e6, cpu_share * 100, latencies
    finally:
        for p in (exporter, sim):
            p.terminate()
            p.wait(timeout=10)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of RSS/CPU observation")
    parser.add_argument("--trials", type=int, default=10, help="disconnect-detection trials")
    parser.add_argument("--scrapes", type=int, default=1000, help="/metrics requests to time")
    args = parser.parse_args()
    setup_logging("ERROR")
    detection, renders = asyncio.run(disconnect_detection(args.trials, args.scrapes))
    rss_mb, cpu_pct, latencies = resource_and_latency(args.duration, args.scrapes)
    rows = [
        ("disconnect -> connected=0, median", f"{statistics.median(detection) * 1000:.1f} ms", "< 500 ms"),
        ("disconnect -> connected=0, max", f"{max(detection) * 1000:.1f} ms", "< 500 ms"),
        (f"exporter peak RSS over {args.duration:g} s", f"{rss_mb:.1f} MB", "< 80 MB"),
        (f"exporter CPU over {args.duration:g} s", f"{cpu_pct:.2f} % of a core", "< 2 %"),
        (f"/metrics body render p99 (in-process, {args.scrapes}x)", f"{percentile(renders, 0.99) * 1000:.2f} ms",
         ""),
        (f"/metrics p50 ({args.scrapes} scrapes)", f"{percentile(latencies, 0.5) * 1000:.2f} ms", ""),
        (f"/metrics p99 ({args.scrapes} scrapes)", f"{percentile(latencies, 0.99) * 1000:.2f} ms", "< 5 ms"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)}  {'value':>18}  goal")
    for name, value, goal in rows:
        print(f"{name.ljust(width)}  {value:>18}  {goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
