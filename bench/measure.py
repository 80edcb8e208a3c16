"""What the benches measure a process by: CPU share over a window, /metrics scrape times, percentiles.

One copy for every bench (run_all.py and the per-component benches), so that a figure in
docs/performance.md means the same thing whichever bench wrote it.
"""

from __future__ import annotations

import contextlib
import http.client
import time
from pathlib import Path

import psutil


def thread_cpu_ns(pid: int) -> dict[int, int]:
    """Nanoseconds each live thread of ``pid`` has run, from ``/proc/<pid>/task/*/schedstat``."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            out[int(task.name)] = int((task / "schedstat").read_text().split()[0])
    return out


def cpu_seconds(proc: psutil.Process) -> float:
    """User plus system CPU time the process has used so far (clock ticks: 10 ms resolution)."""
    times = proc.cpu_times()
    return float(times.user + times.system)


def cpu_shares(procs: list[psutil.Process], seconds: float) -> list[float]:
    """Share of one core each process used over the same window (1.0 = one full core).

    Why schedstat: a process using 0.1 % of a core gains a handful of 10 ms clock ticks a minute,
    so a ratio of two such figures is mostly rounding; the scheduler's per-thread run time is in
    nanoseconds. A thread that ends inside the window takes its time with it (the kernel keeps no
    per-thread figure for it), so where that happened the clock-tick figure is used instead.
    """
    if not Path("/proc/self/task").is_dir():
        before_ticks = [cpu_seconds(p) for p in procs]
        started = time.monotonic()
        time.sleep(seconds)
        wall = time.monotonic() - started
        return [(cpu_seconds(p) - b) / wall for p, b in zip(procs, before_ticks, strict=True)]
    before = [(thread_cpu_ns(p.pid), cpu_seconds(p)) for p in procs]
    started = time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - started
    shares = []
    for proc, (threads, ticks) in zip(procs, before, strict=True):
        after = thread_cpu_ns(proc.pid)
        if set(threads) <= set(after):
            used = sum(ns - threads.get(tid, 0) for tid, ns in after.items()) / 1e9
        else:  # a thread ended inside the window: its nanoseconds are gone
            used = cpu_seconds(proc) - ticks
        shares.append(used / wall)
    return shares


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
