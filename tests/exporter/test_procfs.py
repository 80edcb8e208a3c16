"""The /proc reading gives the figures psutil gives, in the same units, for this process and another."""

from __future__ import annotations

import subprocess
import sys

import psutil
import pytest

from probes.passive import procfs

pytestmark = pytest.mark.skipif(not procfs.AVAILABLE, reason="no /proc")


def _psutil_figures(pid: int) -> tuple[int, float, int]:
    proc = psutil.Process(pid)
    with proc.oneshot():
        cpu = proc.cpu_times()
        return proc.memory_info().rss, cpu.user + cpu.system, proc.num_fds()


@pytest.mark.parametrize("other", [False, True])
def test_figures_equal_psutil(other: bool) -> None:
    script = "import time; sum(range(10**7)); time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", script]) if other else None
    try:
        pid = child.pid if child else psutil.Process().pid
        if child:
            psutil.Process(pid).cpu_times()  # let it start
            while psutil.Process(pid).cpu_times().user < 0.05:
                pass
        else:
            sum(range(10**6))
        for _ in range(3):  # the figures move between the two readings only if CPU is spent between them
            figures = procfs.read(pid)
            rss, cpu, fds = _psutil_figures(pid)
            if figures.cpu_seconds == cpu and figures.rss == rss:
                break
        assert figures.rss == rss and figures.rss > 1_000_000
        assert figures.cpu_seconds == pytest.approx(cpu, abs=1e-9) and figures.cpu_seconds > 0
        assert figures.fds == fds
        assert figures.start_ticks / procfs.CLOCK_TICKS == pytest.approx(
            psutil.Process(pid).create_time() - psutil.boot_time(), abs=1.5)
    finally:
        if child:
            child.kill()
            child.wait()


def test_gone_process_raises_oserror() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    with pytest.raises(OSError):
        procfs.read(child.pid)
