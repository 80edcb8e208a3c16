"""The process probe: memory, CPU time and open files of this exporter and of watched processes.

For the exporter itself it also counts live asyncio tasks: a task leaked per reconnect or per probe
run grows this count long before it shows in memory.

On a Raspberry Pi the trading bot, the Gateway (a JVM) and the monitoring share a few GB of memory;
a slow leak shows here long before the kernel's OOM killer does. Watched processes are found by a
regular expression over their command line (config probes.processes) and looked up again if they
restart.

Read at scrape time, as prometheus-client's ``ProcessCollector`` reads its figures: nothing runs
between scrapes (no timer, no task), and :meth:`ProcessProbe.read` samples when the exporter is
scraped. A reading younger than ``probes.process_interval`` is served again, so Prometheus's 2 s
scrapes (or 200 concurrent scrapers) cost no more ``/proc`` reads than the interval allows. The
reading runs on the HTTP thread; a lock keeps two scrapes from sampling at once. On Linux the
figures are read from ``/proc`` directly (:mod:`probes.passive.procfs`); psutil finds watched
processes by command line and reads the figures where there is no ``/proc``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import threading
import time
from dataclasses import dataclass

import psutil

from probes.outcome import ProbeFailure
from probes.passive import procfs
from probes.passive.base import PassiveContext

SELF = "exporter"


@dataclass(frozen=True)
class ProcessSample:
    """One process's figures at the last run; ``up`` False (and zeros) when it was not found."""

    up: bool
    rss: float = 0.0
    cpu_seconds: float = 0.0
    fds: float = 0.0


class ProcessProbe:
    """Samples ``/proc`` (psutil elsewhere) when scraped; success = every watched process was found."""

    name = "process"

    def __init__(self, ctx: PassiveContext) -> None:
        self.interval = ctx.config.probes.process_interval  # the longest a reading is served again
        self.recorder = ctx.state.outcomes.recorder(self.name)
        self.watches = [(w.name, re.compile(w.cmdline_regex)) for w in ctx.config.probes.processes]
        self.samples: dict[str, ProcessSample] = {}
        self.asyncio_tasks: int | None = None
        self.host_cpu: float | None = None
        self.host_memory: float | None = None
        self.found: dict[str, psutil.Process] = {}
        self.started: dict[int, int] = {}  # pid -> start time in ticks when found (a reused pid differs)
        self.own = psutil.Process(os.getpid())
        self.loop: asyncio.AbstractEventLoop | None = None  # whose tasks are counted
        self._lock = threading.Lock()
        self._read_at = -math.inf  # monotonic time of the latest reading
        self._host_cpu = procfs.HostCpu()
        self._host_cpu.busy_ratio()  # prime: the first reading has no interval to measure over

    def schedule(self) -> None:
        """Nothing to schedule: :meth:`read` samples at scrape time. Called on the event loop (by
        the exporter's start), which is the moment the loop whose tasks are counted is known."""
        with contextlib.suppress(RuntimeError):
            self.loop = asyncio.get_running_loop()

    def read(self) -> None:
        """Sample unless a reading younger than the interval exists; record the outcome. Any thread."""
        with self._lock:
            started = time.monotonic()
            if started - self._read_at < self.interval:
                return
            self._read_at = started
            try:
                self._sample_all()
            except ProbeFailure as exc:
                self.recorder.record(False, time.monotonic() - started, str(exc))
            except Exception as exc:  # a scrape must never fail because psutil did
                self.recorder.record(False, time.monotonic() - started, f"{type(exc).__name__}: {exc}")
            else:
                self.recorder.record(True, time.monotonic() - started)

    def _find(self, name: str, pattern: re.Pattern[str]) -> psutil.Process | None:
        known = self.found.get(name)
        if known is not None and self._still_running(known):
            return known
        for proc in psutil.process_iter(["pid", "cmdline"]):
            cmdline = " ".join(proc.info.get("cmdline") or [])
            if proc.pid != self.own.pid and cmdline and pattern.search(cmdline):
                self.found[name] = proc
                if procfs.AVAILABLE:
                    with contextlib.suppress(OSError, ValueError, IndexError):
                        self.started[proc.pid] = procfs.start_ticks(proc.pid)
                return proc
        self.found.pop(name, None)
        return None

    def _still_running(self, proc: psutil.Process) -> bool:
        """Whether the process found earlier is still that process (not a new one on its pid)."""
        if not procfs.AVAILABLE or proc.pid not in self.started:
            return proc.is_running()
        try:
            return procfs.start_ticks(proc.pid) == self.started[proc.pid]
        except (OSError, ValueError, IndexError):
            return False

    def _sample(self, name: str, proc: psutil.Process) -> bool:
        if procfs.AVAILABLE:
            try:
                figures = procfs.read_own() if proc is self.own else procfs.read(proc.pid)
            except (OSError, ValueError, IndexError):
                self.samples[name] = ProcessSample(False)
                return False
            self.samples[name] = ProcessSample(True, figures.rss, figures.cpu_seconds, figures.fds)
            return True
        try:
            with proc.oneshot():
                rss = proc.memory_info().rss
                cpu = proc.cpu_times()
                fds = proc.num_fds()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            self.samples[name] = ProcessSample(False)
            return False
        self.samples[name] = ProcessSample(True, rss, cpu.user + cpu.system, fds)
        return True

    async def run_once(self) -> None:
        """One reading now, whatever its age, recorded as :meth:`read` records it (the
        :class:`PassiveProbe` shape; the exporter itself never schedules it)."""
        self.loop = asyncio.get_running_loop()
        self._read_at = -math.inf
        self.read()

    def _sample_all(self) -> None:
        self._sample(SELF, self.own)
        if self.loop is not None:
            self.asyncio_tasks = len(asyncio.all_tasks(self.loop))  # safe from another thread
        busy = self._host_cpu.busy_ratio()
        if busy is not None:
            self.host_cpu = busy
        self.host_memory = procfs.host_memory().used_ratio
        missing = []
        for name, pattern in self.watches:
            proc = self._find(name, pattern)
            if proc is None:
                self.samples[name] = ProcessSample(False)
                missing.append(name)
            elif not self._sample(name, proc):  # gone between finding and reading: _sample marks it
                missing.append(name)
        if missing:
            raise ProbeFailure(f"watched process not found: {', '.join(missing)}")
