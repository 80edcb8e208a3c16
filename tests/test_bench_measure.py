"""The benches' placement helper: each process of a pair runs half the window beside the feeder.

The figures themselves are the benches' (docs/performance.md); this checks the mechanics the
ratio rests on: every thread is moved (not only a process's first), and nothing stays pinned.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.measure import pin_to_cpu, placement_cpus, swapped_cpu_shares

pytestmark = pytest.mark.skipif(placement_cpus() is None, reason="needs two CPUs and sched_setaffinity")

THREADED = ("import threading, time; threading.Thread(target=time.sleep, args=(60,)).start(); "
            "print('up', flush=True); time.sleep(60)")


def _allowed(pid: int) -> list[set[int]]:
    return [os.sched_getaffinity(int(task.name)) for task in Path(f"/proc/{pid}/task").iterdir()]


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[str]]]:
    procs = [subprocess.Popen([sys.executable, "-c", THREADED], stdout=subprocess.PIPE, text=True) for _ in range(3)]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
        yield procs
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def test_pin_moves_every_thread_and_none_restores(children: list[subprocess.Popen[str]]) -> None:
    cpus = placement_cpus()
    assert cpus is not None
    pid = children[0].pid
    assert len(_allowed(pid)) == 2  # the child's main thread and its sleeper
    pin_to_cpu(pid, cpus[1])
    assert _allowed(pid) == [{cpus[1]}, {cpus[1]}]
    pin_to_cpu(pid, None)
    assert _allowed(pid) == [os.sched_getaffinity(0)] * 2


def test_swapped_shares_leave_nothing_pinned(children: list[subprocess.Popen[str]]) -> None:
    cpus = placement_cpus()
    assert cpus is not None
    feeder, first, second = (p.pid for p in children)
    seen: list[list[set[int]]] = []
    stop = threading.Event()

    def watch() -> None:  # what the first process is allowed while the windows run
        while not stop.wait(0.02):
            seen.append(_allowed(first))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        shares = swapped_cpu_shares(feeder, (first, second), 1.0, cpus)
    finally:
        stop.set()
        watcher.join()
    assert all(0 <= share < 0.5 for share in shares)  # sleeping children: next to no CPU
    assert [{cpus[0]}] * 2 in seen and [{cpus[1]}] * 2 in seen  # beside the feeder, then on the other CPU
    for pid in (feeder, first, second):
        assert _allowed(pid) == [os.sched_getaffinity(0)] * 2
