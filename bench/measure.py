"""What the benches measure a process by: CPU share over a window, /metrics scrape times, percentiles.

One copy for every bench (run_all.py and the per-component benches), so that a figure in
docs/performance.md means the same thing whichever bench wrote it.
"""

from __future__ import annotations

import contextlib
import http.client
import os
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


def pin_to_cpu(pid: int, cpu: int | None) -> None:
    """Every thread of ``pid`` on ``cpu`` (threads it starts later inherit the mask); None: any CPU.

    ``os.sched_setaffinity(pid)`` alone moves only the thread whose id is ``pid``, hence the loop.
    A CPU the process may not use raises (OSError): a silent failure would measure unpinned.
    """
    pin_masks(pid, set(os.sched_getaffinity(0)) if cpu is None else {cpu})


def thread_masks(pid: int) -> dict[int, set[int]]:
    """The CPUs each live thread of ``pid`` may run on, to put them back afterwards."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError, FileNotFoundError):  # a thread that ended
            out[int(task.name)] = set(os.sched_getaffinity(int(task.name)))
    return out


def pin_masks(pid: int, mask: set[int] | dict[int, set[int]]) -> None:
    """Every thread of ``pid`` to ``mask``, or each to its own mask from :func:`thread_masks`
    (a thread started since gets the mask of the process's first thread)."""
    masks = {} if isinstance(mask, set) else mask
    first = mask if isinstance(mask, set) else mask.get(pid, set(os.sched_getaffinity(0)))
    for task in Path(f"/proc/{pid}/task").iterdir():
        tid = int(task.name)
        with contextlib.suppress(ProcessLookupError, FileNotFoundError):  # a thread that ended meanwhile
            os.sched_setaffinity(tid, masks.get(tid, first))


def placement_cpus() -> tuple[int, int] | None:
    """Two CPUs this process may use, for :func:`swapped_cpu_shares`; None where it cannot pin."""
    if not hasattr(os, "sched_setaffinity") or not Path("/proc/self/task").is_dir():
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return (cpus[0], cpus[1]) if len(cpus) >= 2 else None


def swapped_cpu_shares(feeder: int, pair: tuple[int, int], seconds: float,
                       cpus: tuple[int, int]) -> tuple[float, float]:
    """CPU shares of the two processes in ``pair``, each half the window on the feeder's CPU.

    Why: the cost of the same work depends on where a process runs relative to the process
    sending it data (here the simulator): a wake-up on the sender's CPU finds the data in that
    CPU's cache and needs no cross-CPU interrupt. On the 2-core machine of docs/performance.md the
    exporter used 1.46-1.51 ms of CPU per second beside the simulator and 1.85-1.95 ms where the
    scheduler put it, more than the difference being measured. Two clients of one simulator
    compared side by side unpinned thus compare placements as much as code. Here the feeder stays
    on ``cpus[0]``; the first process runs there and the second on ``cpus[1]`` for half the window,
    then they swap, and each figure is the mean of its two halves. Afterwards every thread has
    the CPUs it had before.
    """
    near, far = cpus
    first, second = pair
    saved = {pid: thread_masks(pid) for pid in (feeder, first, second)}
    try:
        pin_to_cpu(feeder, near)
        pin_to_cpu(first, near)
        pin_to_cpu(second, far)
        a = cpu_shares([psutil.Process(first), psutil.Process(second)], seconds / 2)
        pin_to_cpu(first, far)
        pin_to_cpu(second, near)
        b = cpu_shares([psutil.Process(first), psutil.Process(second)], seconds / 2)
    finally:
        for pid, masks in saved.items():
            with contextlib.suppress(ProcessLookupError, FileNotFoundError):  # a process that ended
                pin_masks(pid, masks)
    return (a[0] + b[0]) / 2, (a[1] + b[1]) / 2


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
