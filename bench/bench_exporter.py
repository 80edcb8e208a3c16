"""Exporter figures against the simulator: disconnect detection, memory and CPU, /metrics latency.

Plain script, not a test: timings depend on the machine. Run from the repository root:

    .venv/bin/python bench/bench_exporter.py [--duration 60] [--trials 10] [--scrapes 1000]
    .venv/bin/python bench/bench_exporter.py --only overhead,scrape [--runs 3] [--duration 120] \
        [--placement swapped,free]

Goals: connected gauge at 0 within 0.5 s of the Gateway dropping the socket; exporter RSS < 80 MB;
``overhead``: exporter CPU (3 symbols at 4 ticks/s, shipped probe intervals) at most 1.3x a bare
ib_async script holding the same subscriptions on the same simulator in the same window (each of
``--runs`` runs; CPU in nanoseconds from schedstat), in a window without scrapes and in one scraped
at the shipped Prometheus interval (the process figures are read when scraped); ``swapped``
placement gives each client half of each window on the simulator's CPU and half on another, so
the scheduler's choice of CPU does not decide the ratio (``free``: wherever it puts them); each
run measures half of each window with the exporter connected first and half with the bare
client first, and the bare client runs without glibc's map and unmap of its receive buffer per read
(:data:`BARE_ALLOCATOR`); then, in a window of its own, the CPU of one scrape beside
prometheus-client's own server's;
``scrape``: /metrics p99 over 1,000 kept-alive scrapes < 5 ms with 3 symbols and
< 10 ms with 100, next to prometheus-client's own HTTP exposition of a registry holding as many
series, scraped by the same client in the same run (that server closes each connection);
100 symbols at 4 ticks/s < 5 % of a core.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.measure import (  # noqa: E402
    cpu_shares,
    percentile,
    placement_cpus,
    scrape_times,
    swapped_cpu_shares,
    thread_cpu_ns,
)
from exporter.app import ExporterApp  # noqa: E402
from gatewatch.config import GatewatchConfig  # noqa: E402
from gatewatch.localstack.net import free_port  # noqa: E402
from gatewatch.localstack.process import child_environment, start_exporter  # noqa: E402
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
        return peak_rss / 1e6, cpu_share * 100, scrape_times(listen, scrapes)
    finally:
        for p in (exporter, sim):
            p.terminate()
            p.wait(timeout=10)


SIM_PORTS = ("--port", "--control-port")


@contextlib.contextmanager
def simulator_process(symbols: list[str], tick_hz: float) -> Iterator[tuple[int, int]]:
    """The simulator as its own process (as in the stack): its work is not counted as the exporter's.

    Yields its API port and its process id."""
    port = free_port()
    sim = subprocess.Popen([sys.executable, "-m", "simulator", "--port", str(port), "--control-port", "-1",
                            "--account", "DU1234567", "--seed", "1", "--market", "open",
                            "--symbols", ",".join(symbols), "--tick-hz", f"{tick_hz:g}"],
                           cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.2)
        yield port, sim.pid
    finally:
        sim.terminate()
        sim.wait(timeout=10)


@contextlib.contextmanager
def exporter_process(gateway_port: int, symbols: list[str], work: Path) -> Iterator[tuple[int, psutil.Process]]:
    """The exporter with the shipped configuration (probe intervals included), watching ``symbols``."""
    listen = free_port()
    config = work / "gatewatch.yaml"
    config.write_text(f"gateway:\n  port: {gateway_port}\nprobes:\n  symbols: [{', '.join(symbols)}]\n")
    exporter = start_exporter(config, listen, work / "exporter.log", env=child_environment(drop=["GATEWATCH_GATEWAY"]))
    try:
        wait_connected(listen)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # every stream delivering before measuring
            body = urllib.request.urlopen(f"http://127.0.0.1:{listen}/metrics", timeout=5).read().decode()
            if body.count("gatewatch_quote_ticks_total{") >= len(symbols):
                break
            time.sleep(0.5)
        yield listen, psutil.Process(exporter.pid)
    finally:
        exporter.stop(15)


BARE_ALLOCATOR = {"MALLOC_MMAP_THRESHOLD_": str(1 << 20)}
"""glibc's mmap threshold for the bare client, fixed above ib_async's 256 KiB receive buffer.

Why: a small Python process starts with glibc's 128 KiB threshold, so the bare script maps, shrinks
and unmaps that buffer on every read (three system calls and fresh zeroed pages per read; strace).
glibc raises the threshold once a larger block is freed, which in any bigger process happens at
start-up: the exporter makes none of those calls, nor would a real bot. The churn cost the script
about 3 % of its CPU beside a copy without it, in both connection orders (docs/performance.md):
small, but on the bare client's side of a ratio judged against 1.3x. Ignored by other C libraries."""


@contextlib.contextmanager
def bare_process(gateway_port: int, symbols: list[str]) -> Iterator[psutil.Process]:
    """bench/bare_ib_async.py holding ``symbols``, with :data:`BARE_ALLOCATOR` in its environment."""
    bare = subprocess.Popen([sys.executable, str(ROOT / "bench" / "bare_ib_async.py"), "--port", str(gateway_port),
                             "--symbols", ",".join(symbols)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env={**os.environ, **BARE_ALLOCATOR})
    try:
        assert bare.stdout is not None
        if "holding" not in bare.stdout.readline():
            raise RuntimeError("bare_ib_async.py did not start streaming")
        yield psutil.Process(bare.pid)
    finally:
        bare.terminate()
        bare.wait(timeout=10)


REFERENCE_SERVER = """
import sys, time
from prometheus_client import CollectorRegistry, Gauge, start_http_server, disable_created_metrics
disable_created_metrics()
n, port = int(sys.argv[1]), int(sys.argv[2])
registry = CollectorRegistry()
families = [Gauge(f"reference_family_{i}", "A reference family of the same size.", ["symbol"], registry=registry)
            for i in range(max(1, n // 100))]
for i in range(n):
    families[i % len(families)].labels(symbol=f"S{i:05d}").set(i * 1.5)
start_http_server(port, addr="127.0.0.1", registry=registry)
print("serving", flush=True)
for _line in sys.stdin:  # a line asks for the CPU used so far, by every thread (a request's ended ones too)
    print(time.process_time_ns(), flush=True)
"""


@contextlib.contextmanager
def reference_process(series: int) -> Iterator[tuple[int, Callable[[], int]]]:
    """prometheus-client's own HTTP exposition (``start_http_server``) of ``series`` gauge series.

    It answers in HTTP/1.0 and closes the connection after each answer, on a new thread per
    connection: a client asking it again reconnects. Yields its port and a function returning the
    nanoseconds of CPU it has used, asked of the process itself because ``/proc`` forgets the time
    of a thread once it ends.
    """
    port = free_port()
    ref = subprocess.Popen([sys.executable, "-c", REFERENCE_SERVER, str(series), str(port)], cwd=ROOT,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert ref.stdin is not None and ref.stdout is not None
    pipe_in, pipe_out = ref.stdin, ref.stdout

    def cpu_ns() -> int:
        pipe_in.write("\n")
        pipe_in.flush()
        return int(pipe_out.readline())

    try:
        pipe_out.readline()
        yield port, cpu_ns
    finally:
        ref.terminate()
        ref.wait(timeout=10)


def reference_scrapes(series: int, n: int) -> list[float]:
    """``n`` scrapes of :func:`reference_process` as :func:`scrape_times` makes them (it closes each
    connection, so every scrape connects anew); seconds each."""
    with reference_process(series) as (port, _cpu_ns):
        return scrape_times(port, n)


def series_count(body: str) -> int:
    return sum(1 for line in body.splitlines() if line and not line.startswith("#"))


def shipped_scrape_interval() -> float:
    """Seconds between Prometheus's scrapes of the exporter in the shipped prometheus/prometheus.yml."""
    text = (ROOT / "prometheus" / "prometheus.yml").read_text()
    found = re.search(r"^  scrape_interval: (\d+(?:\.\d+)?)s$", text, re.MULTILINE)
    if found is None:
        raise RuntimeError("prometheus/prometheus.yml: no global scrape_interval in seconds")
    return float(found.group(1))


@contextlib.contextmanager
def scraping(port: int, interval: float, offset: float = 0.0) -> Iterator[list[int]]:
    """Scrape /metrics every ``interval`` seconds (``offset`` s into each) on one connection, kept
    alive where the server allows it, as Prometheus does (prometheus-client's own server closes it
    after each answer; the next scrape reconnects).

    Why: the exporter reads some figures (the process probe's) when it is scraped, so an exporter
    nobody scrapes would look cheaper than one in the stack. The scraper's own CPU is this process's.
    """
    stop = threading.Event()
    done: list[int] = []

    def scrape() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        while not stop.wait(interval - (time.monotonic() - offset) % interval):
            connection.request("GET", "/metrics")
            connection.getresponse().read()
            done.append(1)
        connection.close()

    thread = threading.Thread(target=scrape, name="scraper", daemon=True)
    thread.start()
    try:
        yield done
    finally:
        stop.set()
        thread.join(10)


WINDOWS = ("not scraped", "scraped")


@dataclass
class OverheadRun:
    """One overhead run: (exporter, bare) CPU shares per (placement, window), and what a scrape cost.

    ``scrape_cpu`` is (the exporter's, prometheus-client's own server's) CPU per scrape in seconds,
    measured after the two windows (:func:`scrape_cost`); NaN where it was not measured.
    """

    shares: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    scrape_cpu: tuple[float, float] = (math.nan, math.nan)


def other_threads_ns(pid: int) -> int:
    """Nanoseconds run by the live threads of ``pid`` other than its first. For the exporter that is
    the HTTP server's thread, plus threads that stay idle (a numerical library's worker)."""
    return sum(ns for tid, ns in thread_cpu_ns(pid).items() if tid != pid)


def scrape_cost(listen: int, exporter_pid: int, seconds: float, every: float) -> tuple[float, float]:
    """CPU of one scrape every ``every`` s: the exporter's, and prometheus-client's own server's.

    Why: a scrape is a wake-up the bare client never has, so the scraped ratio says as much about
    the host as about the exporter; beside the ecosystem's own exposition, holding as many series
    and scraped at the same interval in the same window (half an interval apart, so neither finds
    caches the other warmed), the figure reads on any machine. The exporter's is its HTTP thread's
    time. The reference's is its CPU less its idle CPU (it polls twice a second), measured over
    half a window just before. Run after the windows of :func:`bench_overhead`, so the extra
    process never loads them.
    """
    body = urllib.request.urlopen(f"http://127.0.0.1:{listen}/metrics", timeout=5).read().decode()
    with reference_process(series_count(body)) as (ref_port, ref_cpu_ns):
        time.sleep(1)
        idle_before, idle_started = ref_cpu_ns(), time.monotonic()
        time.sleep(seconds / 2)
        idle_rate = (ref_cpu_ns() - idle_before) / (time.monotonic() - idle_started)  # ns per second
        with scraping(listen, every) as ours, scraping(ref_port, every, every / 2) as theirs:
            time.sleep(1)
            ours_before, theirs_before = len(ours), len(theirs)
            http_before, ref_before, started = other_threads_ns(exporter_pid), ref_cpu_ns(), time.monotonic()
            time.sleep(seconds)
            http_ns, ref_ns = other_threads_ns(exporter_pid) - http_before, ref_cpu_ns() - ref_before
            wall = time.monotonic() - started
            n_ours, n_theirs = len(ours) - ours_before, len(theirs) - theirs_before
    if not n_ours or not n_theirs:
        return math.nan, math.nan
    return http_ns / 1e9 / n_ours, (ref_ns - idle_rate * wall) / 1e9 / n_theirs


@contextlib.contextmanager
def clients_in_order(port: int, symbols: list[str], work: Path,
                     exporter_first: bool) -> Iterator[tuple[int, psutil.Process, psutil.Process]]:
    """The exporter and the bare client, connected to the simulator in the order asked for; yields
    (the exporter's /metrics port, the exporter, the bare client)."""
    with contextlib.ExitStack() as stack:
        if exporter_first:
            listen, exporter = stack.enter_context(exporter_process(port, symbols, work))
            bare = stack.enter_context(bare_process(port, symbols))
        else:
            bare = stack.enter_context(bare_process(port, symbols))
            listen, exporter = stack.enter_context(exporter_process(port, symbols, work))
        yield listen, exporter, bare


def bench_overhead(runs: int, seconds: float, scrape_every: float, placements: list[str],
                   *, with_scrape_cost: bool = True) -> list[OverheadRun]:
    """Per run, (exporter, bare) CPU share for each placement and window; then the cost of a scrape.

    Both clients hold 3 streams on one simulator and are measured together (CPU from the
    scheduler's per-thread nanoseconds): a window nobody scrapes, then one scraped every
    ``scrape_every`` s as Prometheus would. Placement ``free`` leaves the processes where the
    scheduler puts them; ``swapped`` gives each client half of each window on the simulator's CPU
    and half on another (:func:`bench.measure.swapped_cpu_shares`), so neither is favoured by
    where it happens to run. ``with_scrape_cost`` adds :func:`scrape_cost` after the windows.

    Each run has two halves, the clients connected in opposite orders, each window ``seconds / 2``
    long in each; a figure is the mean of its two halves. Why: of two identical bare clients on one
    simulator, the one connected first used 1.06-1.25x the CPU of the one connected second in every
    window or run measured with their CPUs fixed (both on one, or swapped; docs/performance.md), so
    a fixed order would compare connection orders as much as code.
    """
    symbols = ["SPY", "QQQ", "IWM"]
    cpus = placement_cpus()
    results = []
    for _ in range(runs):
        run = OverheadRun()
        halves: list[dict[tuple[str, str], tuple[float, float]]] = []
        with tempfile.TemporaryDirectory(prefix="gatewatch-bench-") as tmp, \
                simulator_process(symbols, 4.0) as (port, sim_pid):
            for exporter_first in (True, False):
                with clients_in_order(port, symbols, Path(tmp), exporter_first) as (listen, exporter, bare):
                    time.sleep(5)
                    half: dict[tuple[str, str], tuple[float, float]] = {}
                    for window in WINDOWS:
                        with scraping(listen, scrape_every) if window == "scraped" else contextlib.nullcontext():
                            time.sleep(1 if window == "scraped" else 0)
                            for placement in placements:
                                if placement == "swapped" and cpus is not None:
                                    # The client named first starts on the simulator's CPU and ends away from
                                    # it, where a free window after it (the default order) finds it: each half
                                    # names the other.
                                    pair = (exporter.pid, bare.pid) if exporter_first else (bare.pid, exporter.pid)
                                    shares = swapped_cpu_shares(sim_pid, pair, seconds / 2, cpus)
                                    half[(placement, window)] = shares if exporter_first else shares[::-1]
                                elif placement == "free":
                                    exp_cpu, bare_cpu = cpu_shares([exporter, bare], seconds / 2)
                                    half[(placement, window)] = (exp_cpu, bare_cpu)
                    halves.append(half)
                    if with_scrape_cost and not exporter_first:
                        run.scrape_cpu = scrape_cost(listen, exporter.pid, seconds, scrape_every)
        run.shares = {key: ((halves[0][key][0] + halves[1][key][0]) / 2, (halves[0][key][1] + halves[1][key][1]) / 2)
                      for key in halves[0]}
        results.append(run)
    return results


def bench_scrape(symbol_counts: list[int], scrapes: int, cpu_seconds_window: float) -> list[dict[str, float]]:
    """Per symbol count: exporter CPU, /metrics p50/p99, series, and the reference server's p50/p99."""
    rows = []
    for n in symbol_counts:
        symbols = (["SPY", "QQQ", "IWM"] + [f"S{i:03d}" for i in range(1, 200)])[:n]
        with tempfile.TemporaryDirectory(prefix="gatewatch-bench-") as tmp, \
                simulator_process(symbols, 4.0) as (port, _sim_pid), \
                exporter_process(port, symbols, Path(tmp)) as (listen, exporter):
            time.sleep(3)
            (cpu,) = cpu_shares([exporter], cpu_seconds_window)
            body = urllib.request.urlopen(f"http://127.0.0.1:{listen}/metrics", timeout=5).read().decode()
            ours = scrape_times(listen, scrapes)
        series = series_count(body)
        theirs = reference_scrapes(series, scrapes)
        rows.append({"symbols": n, "cpu": cpu, "series": series, "p50": percentile(ours, 0.5),
                     "p99": percentile(ours, 0.99), "ref_p50": percentile(theirs, 0.5),
                     "ref_p99": percentile(theirs, 0.99)})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of each CPU observation")
    parser.add_argument("--trials", type=int, default=10, help="disconnect-detection trials")
    parser.add_argument("--scrapes", type=int, default=1000, help="/metrics requests to time")
    parser.add_argument("--runs", type=int, default=3, help="overhead runs (exporter vs bare, side by side)")
    parser.add_argument("--scrape-every", type=float, default=None,
                        help="overhead: seconds between scrapes (default: prometheus/prometheus.yml's)")
    parser.add_argument("--only", default="detection,resources,overhead,scrape",
                        help="comma list of: detection, resources, overhead, scrape")
    parser.add_argument("--placement", default="swapped,free",
                        help="overhead: comma list of swapped (each client half of each window on the "
                             "simulator's CPU), free (where the scheduler puts them)")
    args = parser.parse_args()
    wanted = set(args.only.split(","))
    setup_logging("ERROR")
    rows: list[tuple[str, str, str]] = []
    if "detection" in wanted:
        detection, renders = asyncio.run(disconnect_detection(args.trials, args.scrapes))
        rows += [
            ("disconnect -> connected=0, median", f"{statistics.median(detection) * 1000:.1f} ms", "< 500 ms"),
            ("disconnect -> connected=0, max", f"{max(detection) * 1000:.1f} ms", "< 500 ms"),
            (f"/metrics body render p99 (in-process, {args.scrapes}x)",
             f"{percentile(renders, 0.99) * 1000:.2f} ms", ""),
        ]
    if "resources" in wanted:
        rss_mb, cpu_pct, _latencies = resource_and_latency(args.duration, args.scrapes)
        rows += [
            (f"exporter peak RSS over {args.duration:g} s", f"{rss_mb:.1f} MB", "< 80 MB"),
            (f"exporter CPU over {args.duration:g} s", f"{cpu_pct:.2f} % of a core", "< 2 %"),
        ]
    if "overhead" in wanted:
        every = shipped_scrape_interval() if args.scrape_every is None else args.scrape_every
        if every <= 0:
            parser.error("--scrape-every must be positive")
        placements = [p for p in args.placement.split(",") if p]
        if not placements or set(placements) - {"free", "swapped"}:
            parser.error("--placement: a comma list of free, swapped")
        if "swapped" in placements and placement_cpus() is None:
            print("swapped placement needs two CPUs and sched_setaffinity: measuring free only", file=sys.stderr)
            placements = ["free"]
        runs = bench_overhead(args.runs, args.duration, every, placements)
        for placement in placements:
            where = "placed by the scheduler" if placement == "free" else "each half on the simulator's CPU"
            for window in WINDOWS:
                label = f"{window}{f' every {every:g} s' if window == 'scraped' else ''}, {where}"
                pairs = [run.shares[(placement, window)] for run in runs]
                for i, (exp_cpu, bare_cpu) in enumerate(pairs, 1):
                    rows.append((f"run {i}: exporter / bare ib_async CPU ({label}), 3 symbols at 4 ticks/s, "
                                 f"{args.duration:g} s", f"{exp_cpu * 100:.3f} / {bare_cpu * 100:.3f} % = "
                                 f"{exp_cpu / bare_cpu:.2f}x", "<= 1.3x"))
                ratios = [e / b for e, b in pairs]
                rows.append((f"exporter / bare CPU ({label}) over {len(pairs)} runs (median, max)",
                             f"{statistics.median(ratios):.2f}x, {max(ratios):.2f}x", "<= 1.3x"))
        for i, run in enumerate(runs, 1):
            ours, theirs = run.scrape_cpu
            rows.append((f"run {i}: CPU per scrape every {every:g} s, {args.duration:g} s after the windows: exporter "
                         f"(HTTP thread) / prometheus-client's own server, as many series",
                         f"{ours * 1e6:.0f} / {theirs * 1e6:.0f} µs", ""))
    if "scrape" in wanted:
        for row in bench_scrape([3, 100], args.scrapes, args.duration):
            n, goal = int(row["symbols"]), "< 5 ms" if row["symbols"] <= 3 else "< 10 ms"
            rows.append((f"{n} symbols ({int(row['series'])} series): /metrics p50 / p99, {args.scrapes} kept-alive",
                         f"{row['p50'] * 1000:.2f} / {row['p99'] * 1000:.2f} ms", f"p99 {goal}"))
            rows.append((f"  prometheus-client's own server, {int(row['series'])} series, same way",
                         f"{row['ref_p50'] * 1000:.2f} / {row['ref_p99'] * 1000:.2f} ms", ""))
            rows.append((f"{n} symbols at 4 ticks/s: exporter CPU over {args.duration:g} s",
                         f"{row['cpu'] * 100:.2f} % of a core", "< 5 %" if n == 100 else ""))
    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)}  {'value':>26}  goal")
    for name, value, goal in rows:
        print(f"{name.ljust(width)}  {value:>26}  {goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
