"""Benchmark the simulated IB Gateway: start-up time and CPU while streaming three symbols.

Usage: python bench/bench_simulator.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time

import psutil
from ib_async import IB, Stock

from gatewatch.localstack.net import free_port


def wait_for_port(port: int, timeout: float = 30) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return time.perf_counter() - t0
        except OSError:
            time.sleep(0.01)
    raise RuntimeError("simulator did not start")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--port", str(port), "--control-port", "-1", "--tick-hz", "4"],
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        startup = time.perf_counter() - t0
        ib = IB()
        ib.connect("127.0.0.1", port, clientId=1, timeout=5)
        _tickers = [
            ib.reqMktData(ib.qualifyContracts(Stock(s, "SMART", "USD"))[0]) for s in ("SPY", "QQQ", "IWM")
        ]
        ib.sleep(1)
        p = psutil.Process(proc.pid)
        c0 = p.cpu_times()
        w0 = time.perf_counter()
        updates = 0

        def count(_: object) -> None:
            nonlocal updates
            updates += 1

        ib.pendingTickersEvent += count
        ib.sleep(args.seconds)
        c1 = p.cpu_times()
        wall = time.perf_counter() - w0
        cpu = (c1.user + c1.system) - (c0.user + c0.system)
        rss = p.memory_info().rss / 1e6
        ib.disconnect()
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"{'metric':<42}{'value':>12}")
    print("-" * 54)
    print(f"{'start-up until port accepts (s)':<42}{startup:>12.3f}")
    print(f"{'CPU % of one core while streaming 3 syms':<42}{100 * cpu / wall:>12.2f}")
    print(f"{'ticker update batches received / s':<42}{updates / wall:>12.1f}")
    print(f"{'resident memory (MB)':<42}{rss:>12.1f}")
    print(f"{'measurement window (s)':<42}{wall:>12.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
