"""This checkout's exporter beside another checkout's, and the bare ib_async client, in the same windows.

Plain script, not a test. Run from the repository root, with the baseline revision checked out
elsewhere (it needs a virtual environment: a link to this one will do):

    git worktree add --detach /tmp/gatewatch-base <revision>
    ln -s "$PWD/.venv" /tmp/gatewatch-base/.venv
    .venv/bin/python bench/bench_compare.py --baseline /tmp/gatewatch-base [--rounds 3] [--seconds 60]

Why: on a shared or virtual machine the CPU a process uses moves with the host's load by more than
a change to the exporter does, between runs and even between windows of one run. Three processes
measured over the same windows, on one simulator streaming 3 symbols at 4 ticks/s, see the same
host: the baseline's and this checkout's figures compare directly, and each against the bare
client. Per process: CPU (nanoseconds from schedstat, all threads) and voluntary context switches
per second (each one a wake-up after waiting: what a cold wake-up costs is most of a small
exporter's CPU). Both exporters run the same configuration: the shipped probe intervals, the
active probes off (as in ``bench_exporter.py``); each window is measured once nobody scrapes and
once with both exporters scraped every 2 s (Prometheus's shipped interval).
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_exporter import (  # noqa: E402
    bare_process,
    scraping,
    shipped_scrape_interval,
    simulator_process,
    wait_connected,
)
from bench.measure import thread_cpu_ns  # noqa: E402
from gatewatch.localstack.net import free_port  # noqa: E402
from gatewatch.localstack.process import child_environment  # noqa: E402

SYMBOLS = ["SPY", "QQQ", "IWM"]


def cpu_and_wakeups(pid: int) -> tuple[int, int]:
    """Nanoseconds run (:func:`bench.measure.thread_cpu_ns`) and voluntary context switches so far,
    summed over the process's threads."""
    switches = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            status = (task / "status").read_text()
            switches += int(status.split("voluntary_ctxt_switches:")[1].split()[0])
    return sum(thread_cpu_ns(pid).values()), switches


@contextlib.contextmanager
def exporter_of(checkout: Path, gateway_port: int, client_id: int, work: Path) -> Iterator[tuple[int, int]]:
    """The exporter of ``checkout`` (its own code and virtual environment); yields (listen port, pid)."""
    listen = free_port()
    config = work / f"exporter-{client_id}.yaml"
    config.write_text(f"gateway:\n  port: {gateway_port}\n  client_id: {client_id}\n"
                      f"probes:\n  symbols: [{', '.join(SYMBOLS)}]\nactive:\n  enabled: false\n")
    env = child_environment(drop=["GATEWATCH_GATEWAY"])
    with open(work / f"exporter-{client_id}.log", "w") as log:
        proc = subprocess.Popen([str(checkout / ".venv" / "bin" / "python"), "-m", "gatewatch", "exporter",
                                 "--config", str(config), "--listen", f"127.0.0.1:{listen}"],
                                cwd=checkout, env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_connected(listen)
            yield listen, proc.pid
        finally:
            proc.terminate()
            proc.wait(timeout=15)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="another checkout of gatewatch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each window")
    args = parser.parse_args()
    interval = shipped_scrape_interval()
    with tempfile.TemporaryDirectory(prefix="gatewatch-compare-") as tmp, \
            simulator_process(SYMBOLS, 4.0) as (port, _sim_pid), \
            exporter_of(args.baseline.resolve(), port, 31, Path(tmp)) as (base_port, base_pid), \
            exporter_of(ROOT, port, 32, Path(tmp)) as (this_port, this_pid), \
            bare_process(port, SYMBOLS) as bare:
        time.sleep(8)  # every stream delivering, the first probe runs over
        pids = {"baseline": base_pid, "this checkout": this_pid, "bare": bare.pid}
        print(f"{'window':<28} " + "  ".join(f"{name + ' (us/s, wake-ups/s)':>34}" for name in pids))
        for round_no in range(1, args.rounds + 1):
            for window in ("not scraped", f"scraped every {interval:g} s"):
                with contextlib.ExitStack() as scrapers:
                    if window != "not scraped":
                        scrapers.enter_context(scraping(base_port, interval))
                        scrapers.enter_context(scraping(this_port, interval))
                        time.sleep(1)
                    before = {name: cpu_and_wakeups(pid) for name, pid in pids.items()}
                    started = time.monotonic()
                    time.sleep(args.seconds)
                    elapsed = time.monotonic() - started
                    after = {name: cpu_and_wakeups(pid) for name, pid in pids.items()}
                figures = {name: ((after[name][0] - before[name][0]) / 1e3 / elapsed,
                                  (after[name][1] - before[name][1]) / elapsed) for name in pids}
                bare_cpu = figures["bare"][0]
                cells = [f"{cpu:8.0f} {wakes:5.1f} ({cpu / bare_cpu:4.2f}x bare)" for cpu, wakes in figures.values()]
                print(f"round {round_no}, {window:<19} " + "  ".join(f"{cell:>34}" for cell in cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
