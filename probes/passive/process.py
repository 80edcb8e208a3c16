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
from dataclasses import dataclass

import psutil

from probes.outcome import ProbeFailure
from probes.passive.base import PassiveContext, Schedule

SELF = "exporter"


@dataclass(frozen=True)
class ProcessSample:
    """One process's figures at the last run; ``up`` False (and zeros) when it was not found."""

    up: bool
    rss: float = 0.0
    cpu_seconds: float = 0.0
    fds: float = 0.0


class ProcessProbe:
    """Samples psutil; success = every watched process was found."""

    name = "process"

    def __init__(self, ctx: PassiveContext) -> None:
        self.interval = ctx.config.probes.process_interval
        self.timeout = ctx.config.gateway.request_timeout
        self.recorder = ctx.state.outcomes.recorder(self.name)
        self.watches = [(w.name, re.compile(w.cmdline_regex)) for w in ctx.config.probes.processes]
        self.samples: dict[str, ProcessSample] = {}
        self.asyncio_tasks: int | None = None
        self.host_cpu: float | None = None
        self.host_memory: float | None = None
        self.found: dict[str, psutil.Process] = {}
        self.own = psutil.Process(os.getpid())
        psutil.cpu_percent(interval=None)  # prime: the first call has no interval to measure over

    def schedule(self) -> Schedule:
        return Schedule(self.interval, self.timeout)

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
        self._sample(SELF, self.own)
        self.asyncio_tasks = len(asyncio.all_tasks())
        self.host_cpu = psutil.cpu_percent(interval=None) / 100
        memory = psutil.virtual_memory()
        self.host_memory = (memory.total - memory.available) / memory.total
        missing = []
        for name, pattern in self.watches:
            proc = self._find(name, pattern)
            if proc is None or not self._sample(name, proc):
                self.samples[name] = ProcessSample(False)
                missing.append(name)
        if missing:
            raise ProbeFailure(f"watched process not found: {', '.join(missing)}")
