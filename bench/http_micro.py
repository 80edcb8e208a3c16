"""CPU per kept-alive scrape of the exporter's HTTP thread (the HTTP layer alone, a fixed body).

    .venv/bin/python bench/http_micro.py [--scrapes 1000] [--interval 0]

The server thread's run time comes from ``/proc/self/task/<tid>/schedstat`` (nanoseconds), so the
client's work in this process is not counted. ``--interval 2`` scrapes at Prometheus's pace, where
the caches are cold at each scrape (use fewer scrapes).
"""

from __future__ import annotations

import argparse
import http.client
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exporter.http_server import MetricsServer


def thread_ns(tid: int) -> int:
    return int(Path(f"/proc/self/task/{tid}/schedstat").read_text().split()[0])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scrapes", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=0.0, help="seconds between scrapes")
    args = parser.parse_args()
    body = b"# HELP x y\n# TYPE x gauge\n" + b"".join(b'x{a="%d"} 1.0\n' % i for i in range(160))
    server = MetricsServer("127.0.0.1", 0, lambda: body, lambda: {})
    server.start()
    tid = next(t.native_id for t in threading.enumerate() if t.name == "metrics-http")
    assert tid is not None
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    for _ in range(50):
        conn.request("GET", "/metrics")
        conn.getresponse().read()
    before = thread_ns(tid)
    for _ in range(args.scrapes):
        conn.request("GET", "/metrics")
        conn.getresponse().read()
        if args.interval:
            time.sleep(args.interval)
    used = thread_ns(tid) - before
    server.stop()
    print(f"HTTP thread CPU per kept-alive scrape: {used / args.scrapes / 1000:.1f} us ({args.scrapes} scrapes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
