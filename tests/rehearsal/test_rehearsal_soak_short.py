"""A short soak (about a minute, quotes ticking fast): no file-descriptor or task growth, bounded memory.

A sanity check only: the real figures come from ``bench/run_all.py --soak-minutes 30`` and are in
docs/performance.md. Tasks come from the exporter's own gauge. An active probe run adds tasks, and
four files while it lasts (its journal with WAL and shared memory, and its own Gateway socket), so
the floor of each half of the run is compared: a leak raises the floor, a run in flight does not.
"""

from __future__ import annotations

import time
from pathlib import Path

import psutil

from gatewatch.localstack.process import REPO_ROOT
from gatewatch.rehearsal.observe import scrape
from gatewatch.rehearsal.runner import Rehearsal, RehearsalOptions

WARM_UP = 20.0
DURATION = 75.0
RSS_GROWTH_BOUND = 25 * 1024 * 1024


def _sample(process: psutil.Process) -> tuple[int, int, int]:
    """(fds, threads, rss): fds as the minimum of a few looks, since a scrape in flight holds one."""
    fds = min(process.num_fds() for _ in range(5) if time.sleep(0.05) is None)
    return fds, process.num_threads(), process.memory_info().rss


def test_short_soak_has_no_fd_growth_and_bounded_rss(tmp_path: Path) -> None:
    options = RehearsalOptions(duration=DURATION, scenario=REPO_ROOT / "scenarios" / "calm.yaml",
                               out_dir=tmp_path, tick_hz=25.0, use_prometheus=False, progress_every=30.0)
    samples: list[tuple[float, tuple[int, int, int]]] = []
    tasks: list[float] = []
    with Rehearsal(options) as rehearsal:
        rehearsal.start()
        assert rehearsal.exporter is not None
        process = psutil.Process(rehearsal.exporter.pid)
        next_sample = rehearsal.window_start + WARM_UP

        def sample(r: Rehearsal) -> None:
            nonlocal next_sample
            if time.time() >= next_sample:
                samples.append((time.time(), _sample(process)))
                tasks.append(scrape(r.metrics_url).get("gatewatch_exporter_asyncio_tasks"))
                next_sample = time.time() + 2.5

        rehearsal.play(on_tick=sample)
        result = rehearsal.finish()
    assert len(samples) >= 16
    half = len(samples) // 2
    fds = [fd_count for _, (fd_count, _, _) in samples]
    threads = [thread_count for _, (_, thread_count, _) in samples]
    assert min(fds[half:]) <= min(fds[:half]), f"open files' floor grew: {fds}"
    assert min(threads[half:]) <= min(threads[:half]), f"threads' floor grew: {threads}"
    rss0, rss1 = samples[0][1][2], samples[-1][1][2]
    assert min(tasks[half:]) <= min(tasks[:half]), f"asyncio tasks' floor grew: {tasks}"
    assert rss1 - rss0 < RSS_GROWTH_BOUND, f"RSS grew {(rss1 - rss0) / 1e6:.1f} MB in {DURATION - WARM_UP:g}s"
    assert result.ledger.problems == []
