"""Real-time check of the simulator's message pacing: a client that keeps to 50 messages in every
1-second window (its own sliding window, sends as fast as it allows) for N seconds, counting
error 100s; then one that sends 60 in a burst, which must get error 100.

Usage: python bench/bench_sim_pacing.py [--seconds 600]

The same rule is checked at simulated time in tests/simulator/test_sim_pacing.py (milliseconds for
10 simulated minutes); this is the wall-clock run over a real socket.
"""

from __future__ import annotations

import argparse
import collections
import socket
import struct
import sys
import threading
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]

from simulator.testing import running_simulator  # noqa: E402

LIMIT = 50


def _frame(fields: list[str]) -> bytes:
    payload = "".join(f + "\0" for f in fields).encode()
    return struct.pack(">I", len(payload)) + payload


def _client(port: int, client_id: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"API\0" + struct.pack(">I", 9) + b"v157..178")
    s.sendall(_frame(["71", "2", str(client_id), ""]))
    return s


def _count_errors(s: socket.socket, stop: threading.Event, out: dict[str, int]) -> None:
    buf = b""
    s.settimeout(0.2)
    while not stop.is_set():
        try:
            chunk = s.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            break
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 4:
            (n,) = struct.unpack(">I", buf[:4])
            if len(buf) < 4 + n:
                break
            fields = buf[4 : 4 + n].decode(errors="replace").split("\0")
            buf = buf[4 + n :]
            if fields[0] == "4" and len(fields) > 3 and fields[3] == "100":
                out["error_100"] += 1
            elif fields[0] == "9":
                out["answers"] += 1


def run(seconds: float) -> dict[str, float]:
    with running_simulator(port=0, control_port=None, tick_hz=4) as sim:
        s = _client(sim.port, 71)
        stop = threading.Event()
        seen = {"error_100": 0, "answers": 0}
        reader = threading.Thread(target=_count_errors, args=(s, stop, seen), daemon=True)
        reader.start()
        time.sleep(0.3)
        sent: collections.deque[float] = collections.deque()
        total = 0
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            now = time.monotonic()
            while sent and sent[0] <= now - 1.0:
                sent.popleft()
            if len(sent) >= LIMIT:
                time.sleep(max(0.0, sent[0] + 1.0 - now) + 1e-4)
                continue
            s.sendall(_frame(["8", "1", "1"]))
            sent.append(now)
            total += 1
        time.sleep(0.5)
        stop.set()
        reader.join(2)
        s.close()
        burst = _client(sim.port, 72)
        burst_seen = {"error_100": 0, "answers": 0}
        stop2 = threading.Event()
        reader2 = threading.Thread(target=_count_errors, args=(burst, stop2, burst_seen), daemon=True)
        reader2.start()
        time.sleep(0.3)
        burst.sendall(b"".join(_frame(["8", "1", "1"]) for _ in range(60)))
        time.sleep(0.7)
        stop2.set()
        reader2.join(2)
        burst.close()
    return {
        "seconds": seconds,
        "messages": total,
        "rate_per_s": total / seconds,
        "error_100_compliant": seen["error_100"],
        "error_100_burst": burst_seen["error_100"],
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=600.0)
    args = ap.parse_args()
    r = run(args.seconds)
    print(
        f"pacing: {r['messages']:.0f} messages in {r['seconds']:.0f} s ({r['rate_per_s']:.1f}/s) at 50 per "
        f"1-s window: {r['error_100_compliant']:.0f} error 100; a 60-message burst: {r['error_100_burst']:.0f}"
    )
    return 0 if r["error_100_compliant"] == 0 and r["error_100_burst"] >= 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
