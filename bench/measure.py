"""What the benches measure a process by: CPU share over a window, /metrics scrape times, percentiles.

One copy for every bench (run_all.py and the per-component benches), so that a figure in
docs/performance.md means the same thing whichever bench wrote it.
"""

from __future__ import annotations

import http.client
import time

import psutil


def cpu_seconds(proc: psutil.Process) -> float:
    """User plus system CPU time the process has used so far."""
    times = proc.cpu_times()
    return float(times.user + times.system)


def cpu_shares(procs: list[psutil.Process], seconds: float) -> list[float]:
    """Share of one core each process used over the same window (1.0 = one full core)."""
    before = [cpu_seconds(p) for p in procs]
    started = time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - started
    return [(cpu_seconds(p) - b) / wall for p, b in zip(procs, before, strict=True)]


def cpu_share(pid: int, seconds: float) -> float:
    """Share of one core a process used over ``seconds`` (1.0 = one full core)."""
    return cpu_shares([psutil.Process(pid)], seconds)[0]


def scrape_times(port: int, n: int, host: str = "127.0.0.1") -> list[float]:
    """``n`` GETs of /metrics on one kept-alive connection, as Prometheus scrapes; seconds each."""
    connection = http.client.HTTPConnection(host, port, timeout=5)
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        connection.request("GET", "/metrics")
        connection.getresponse().read()
        out.append(time.perf_counter() - t0)
    connection.close()
    return out


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0..1) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
