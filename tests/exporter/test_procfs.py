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


def test_host_cpu_times_follow_psutils_rule() -> None:
    """The eight counters psutil sums (guest left out: the kernel counts it in user time)."""
    for _ in range(5):  # the counters advance between the two readings
        ours = [t / procfs.CLOCK_TICKS for t in procfs._host_cpu_times()]
        times = psutil.cpu_times()
        theirs = [times.user, times.nice, times.system, times.idle, times.iowait, times.irq, times.softirq,
                  times.steal]
        if all(abs(a - b) < 0.05 for a, b in zip(ours, theirs, strict=True)):
            break
    assert ours == pytest.approx(theirs, abs=0.05)
    their_total = sum(times) - getattr(times, "guest", 0) - getattr(times, "guest_nice", 0)
    assert sum(ours) == pytest.approx(their_total, abs=0.1)


def test_a_counter_stepping_back_leaves_a_share() -> None:
    """Linux's I/O-wait counter can go backwards: psutil counts each change as at least 0."""
    cpu = procfs.HostCpu()
    now = procfs._host_cpu_times()
    # 800 ticks of user and system time since, and an I/O wait 300 ticks above the one read next:
    # summed as they come, busy (total - idle - I/O wait) would exceed the total (1.6).
    cpu._last = [now[0] - 400, now[1], now[2] - 400, now[3], now[4] + 300, *now[5:]]
    ratio = cpu.busy_ratio()
    assert ratio is not None and 0.0 <= ratio <= 1.0


def test_host_cpu_ratio_needs_an_interval_then_stays_a_share() -> None:
    cpu = procfs.HostCpu()
    assert cpu.busy_ratio() is None  # nothing to measure over yet
    sum(range(10**6))
    ratio = cpu.busy_ratio()
    assert ratio is not None and 0.0 <= ratio <= 1.0
