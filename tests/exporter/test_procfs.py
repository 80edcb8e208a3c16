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


def test_own_figures_equal_psutil() -> None:
    """``read_own`` takes CPU time from times(2) instead of ``stat``: the same counters."""
    sum(range(10**6))
    for _ in range(3):
        figures = procfs.read_own()
        rss, cpu, fds = _psutil_figures(psutil.Process().pid)
        if figures.cpu_seconds == pytest.approx(cpu, abs=1e-9) and figures.rss == rss:
            break
    assert figures.rss == rss and figures.fds == fds
    assert figures.cpu_seconds == pytest.approx(cpu, abs=1e-9) and figures.cpu_seconds > 0


def test_host_memory_equals_psutils_figures() -> None:
    for _ in range(5):  # available memory moves while the test suite runs beside it
        ours, theirs = procfs.host_memory(), psutil.virtual_memory()
        if abs(ours.available - theirs.available) < 0.002 * theirs.total:
            break
    assert ours.total == theirs.total
    assert ours.available == pytest.approx(theirs.available, abs=0.002 * theirs.total)
    assert ours.used_ratio == pytest.approx(theirs.percent / 100, abs=0.01)


def test_host_cpu_ticks_follow_psutils_rule() -> None:
    """Busy = all but idle and I/O wait; guest time not counted twice (psutil's cpu_percent rule)."""
    for _ in range(5):  # the counters advance between the two readings
        busy, total = procfs._host_cpu_ticks()
        times = psutil.cpu_times()
        their_total = (sum(times) - getattr(times, "guest", 0) - getattr(times, "guest_nice", 0)) * procfs.CLOCK_TICKS
        their_busy = their_total - (times.idle + getattr(times, "iowait", 0)) * procfs.CLOCK_TICKS
        if abs(total - their_total) < 5 and abs(busy - their_busy) < 5:
            break
    assert total == pytest.approx(their_total, abs=5) and busy == pytest.approx(their_busy, abs=5)


def test_host_cpu_ratio_needs_an_interval_then_stays_a_share() -> None:
    cpu = procfs.HostCpu()
    assert cpu.busy_ratio() is None  # nothing to measure over yet
    sum(range(10**6))
    ratio = cpu.busy_ratio()
    assert ratio is not None and 0.0 <= ratio <= 1.0
