"""The process probe: memory, CPU time and open files of this exporter and of watched processes.

For the exporter itself it also counts live asyncio tasks: a task leaked per reconnect or per probe
run grows this count long before it shows in memory.

On a Raspberry Pi the trading bot, the Gateway (a JVM) and the monitoring share a few GB of memory;
a slow leak shows here long before the kernel's OOM killer does. Watched processes are found by a
regular expression over their command line (config probes.processes) and looked up again if they
restart.
"""

from __future__ import annotations

import asyncio
import os
import re

import psutil

from exporter.metrics import Metrics
from gatewatch.config import ProcessWatch
from probes.outcome import ProbeFailure

SELF = "exporter"


class ProcessProbe:
    """Samples psutil; success = every watched process was found."""

    name = "process"

    def __init__(self, metrics: Metrics, watches: list[ProcessWatch]) -> None:
        self.metrics = metrics
        self.recorder = metrics.outcomes.recorder(self.name)
        self.watches = [(w.name, re.compile(w.cmdline_regex)) for w in watches]
        self.found: dict[str, psutil.Process] = {}
        self.own = psutil.Process(os.getpid())
        psutil.cpu_percent(interval=None)  # prime: the first call has no interval to measure over

    def _find(self, name: str, pattern: re.Pattern[str]) -> psutil.Process | None:
        known = self.found.get(name)
        if known is not None and known.is_running():
            return known
        for proc in psutil.process_iter(["pid", "cmdline"]):
            cmdline = " ".join(proc.info.get("cmdline") or [])
            if proc.pid != self.own.pid and cmdline and pattern.search(cmdline):
                self.found[name] = proc
                return proc
        self.found.pop(name, None)
        return None

    def _sample(self, name: str, proc: psutil.Process) -> bool:
        m = self.metrics
        try:
            with proc.oneshot():
                rss = proc.memory_info().rss
                cpu = proc.cpu_times()
                fds = proc.num_fds()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            m.process_up.labels(process=name).set(0)
            return False
        m.process_resident_memory.labels(process=name).set(rss)
        m.process_cpu_seconds.labels(process=name).set(cpu.user + cpu.system)
        m.process_open_fds.labels(process=name).set(fds)
        m.process_up.labels(process=name).set(1)
        return True

    async def run_once(self) -> None:
        self._sample(SELF, self.own)
        m = self.metrics
        m.exporter_asyncio_tasks.set(len(asyncio.all_tasks()))
        m.host_cpu_usage_ratio.set(psutil.cpu_percent(interval=None) / 100)
        memory = psutil.virtual_memory()
        m.host_memory_usage_ratio.set((memory.total - memory.available) / memory.total)
        missing = []
        for name, pattern in self.watches:
            proc = self._find(name, pattern)
            if proc is None or not self._sample(name, proc):
                m.process_up.labels(process=name).set(0)
                missing.append(name)
        if missing:
            raise ProbeFailure(f"watched process not found: {', '.join(missing)}")
