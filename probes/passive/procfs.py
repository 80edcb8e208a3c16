"""A process's resident memory, CPU time and open files straight from Linux's ``/proc``.

Why not psutil here: psutil's ``memory_info``, ``cpu_times`` and ``num_fds`` under ``oneshot`` cost
about half a millisecond per process (objects, checks and caches around the same reads); the
exporter reads them at scrape time, so that cost was most of a scrape's CPU. Here it is one read of
``stat``, one of ``statm`` and one directory listing of ``fd``, parsed by hand into the figures
psutil gives (bytes, seconds, a count: ``tests/exporter/test_procfs.py`` checks they are equal).
psutil stays for what it does well: finding processes by command line, and every platform without
``/proc`` (:data:`AVAILABLE` is False there).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

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
    with open(f"/proc/{pid}/statm", "rb") as f:
        rss_pages = int(f.read().split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    # utime and stime are fields 14 and 15 of stat, in clock ticks (psutil divides them the same way).
    cpu = int(fields[11]) / CLOCK_TICKS + int(fields[12]) / CLOCK_TICKS
    return ProcFigures(rss_pages * PAGE_SIZE, cpu, fds, int(fields[19]))


def _stat_fields(pid: int) -> list[bytes]:
    """Fields 3 onwards of ``/proc/<pid>/stat`` (the command name, field 2, may hold spaces and ')')."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    return data[data.rindex(b")") + 2:].split()
