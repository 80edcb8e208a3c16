"""A process's resident memory, CPU time and open files straight from Linux's ``/proc``.

Why not psutil here: psutil's ``memory_info``, ``cpu_times`` and ``num_fds`` under ``oneshot`` cost
about half a millisecond per process (objects, checks and caches around the same reads); the
exporter reads them at scrape time, so that cost was most of a scrape's CPU. Here it is one read of
``stat``, one of ``statm`` and one directory listing of ``fd``, parsed by hand into the figures
psutil gives (bytes, seconds, a count: ``tests/exporter/test_procfs.py`` checks they are equal).
psutil stays for what it does well: finding processes by command line, and every platform without
``/proc`` (:data:`AVAILABLE` is False there; the host figures below fall back to it by themselves).

The host figures (CPU busy share, memory in use) follow psutil's rules for ``cpu_percent`` and
``virtual_memory`` and are shared by the exporter and preflight. Read cold, as a scrape every few
seconds reads them, each ``/proc`` file costs a few hundred microseconds in the kernel whoever
parses it; parsing by hand saves psutil's own part (about 0.3 ms of the 0.73 ms its
``cpu_percent`` took cold, 0.15 ms of ``virtual_memory``'s 0.55 ms), and this process's CPU time
comes from ``times(2)`` instead of a ``stat`` file.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import psutil

AVAILABLE = os.path.exists("/proc/self/stat") and os.path.isdir("/proc/self/fd")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class ProcFigures:
    """What one reading gives: ``start_ticks`` (boot-relative start time) tells a restarted pid apart."""

    rss: int
    cpu_seconds: float
    fds: int
    start_ticks: int


def start_ticks(pid: int) -> int:
    """The process's start time in clock ticks after boot (field 22 of ``stat``); OSError if gone."""
    return int(_stat_fields(pid)[19])


def read(pid: int) -> ProcFigures:
    """The figures of ``pid``; OSError (FileNotFoundError, PermissionError...) if gone or not ours."""
    fields = _stat_fields(pid)
    rss, fds = _memory_and_files(f"/proc/{pid}")
    # utime and stime are fields 14 and 15 of stat, in clock ticks (psutil divides them the same way).
    cpu = int(fields[11]) / CLOCK_TICKS + int(fields[12]) / CLOCK_TICKS
    return ProcFigures(rss, cpu, fds, int(fields[19]))


def read_own() -> ProcFigures:
    """This process's figures, as :func:`read` gives them, without making its ``stat`` file: CPU
    time from ``times(2)`` (the same clock-tick counters); ``start_ticks`` is not needed for the
    process itself and reads 0."""
    rss, fds = _memory_and_files("/proc/self")
    times = os.times()
    return ProcFigures(rss, times.user + times.system, fds, 0)


def _memory_and_files(proc_dir: str) -> tuple[int, int]:
    """Resident bytes (``statm``'s second field, in pages) and open files (the ``fd`` listing)."""
    with open(f"{proc_dir}/statm", "rb") as f:
        rss_pages = int(f.read().split()[1])
    return rss_pages * PAGE_SIZE, len(os.listdir(f"{proc_dir}/fd"))


@dataclass(frozen=True)
class HostMemory:
    """The host's memory in bytes: ``total``, and ``available`` to new work without swapping."""

    total: int
    available: int

    @property
    def used_ratio(self) -> float:
        """Share in use: ``1 - available / total`` (psutil's ``virtual_memory`` rule)."""
        return 1 - self.available / self.total


def host_memory() -> HostMemory:
    """``MemTotal`` and ``MemAvailable`` from ``/proc/meminfo``; psutil's figures elsewhere."""
    if AVAILABLE:
        found: dict[bytes, int] = {}
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                key, _, rest = line.partition(b":")
                if key in (b"MemTotal", b"MemAvailable"):
                    found[key] = int(rest.split()[0]) * 1024  # kB
                    if len(found) == 2:
                        break
        total, available = found.get(b"MemTotal", 0), found.get(b"MemAvailable", 0)
        if 0 < available <= total:
            return HostMemory(total, available)
    # No /proc, a kernel older than MemAvailable (3.14), or a figure psutil corrects (0, or above
    # the total in some containers): psutil's estimate.
    memory = psutil.virtual_memory()
    return HostMemory(int(memory.total), int(memory.available))


class HostCpu:
    """Share of the host's CPU time spent busy between two readings (psutil's ``cpu_percent`` rule).

    Busy is everything but idle and I/O wait; guest time is left out of the total because the
    kernel already counts it in user time. Each counter's change is taken as at least 0, as psutil
    does (Linux's I/O-wait counter can step backwards), so the share stays between 0 and 1. The
    first reading primes the counters and returns None: there is no interval to measure over yet.
    Readings from several threads are taken one at a time, each against the one before it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: list[float] | None = None

    def busy_ratio(self) -> float | None:
        with self._lock:
            now = _host_cpu_times()
            last, self._last = self._last, now
        if last is None:
            return None
        spent = [max(0.0, a - b) for a, b in zip(now, last, strict=True)]
        total = sum(spent)
        idle = spent[3] + spent[4]
        return (total - idle) / total if total > 0 else 0.0


def _host_cpu_times() -> list[float]:
    """All CPUs' user, nice, system, idle, iowait, irq, softirq and steal time since boot.

    From the first line of ``/proc/stat`` (clock ticks); psutil's ``cpu_times`` where there is no
    ``/proc`` (seconds; fields a platform lacks read 0). Guest time is not among them: the kernel
    already counts it in user and nice.
    """
    if AVAILABLE:
        with open("/proc/stat", "rb") as f:
            values = [float(v) for v in f.readline().split()[1:9]]
        return values + [0.0] * (8 - len(values))
    times = psutil.cpu_times()
    return [float(getattr(times, name, 0.0))
            for name in ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")]


def _stat_fields(pid: int) -> list[bytes]:
    """Fields 3 onwards of ``/proc/<pid>/stat`` (the command name, field 2, may hold spaces and ')')."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    return data[data.rindex(b")") + 2:].split()
