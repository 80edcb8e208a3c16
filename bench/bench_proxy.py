"""What the proxy costs a bot: the proxy against a direct connection, in one run.

    .venv/bin/python bench/bench_proxy.py [--seconds 5] [--protobuf]

A synthetic Gateway in this process does the TWS handshake and streams tickPrice frames carrying
their send time (perf_counter_ns) to a raw client in this process, once directly and once through
``gatewatch proxy`` (its own process, pinned to one core, decoding on: the client subscribes the
request id, so every tick is decoded and counted). The text protocol at server version 178, or
with ``--protobuf`` IBKR's protobuf messages at 226 (startApi, reqMktData and TickPrice built with
ibapi's generated classes; the send time rides in the tick's size field). Figures:

* added latency per message at 1,000 messages/s: p50/p99 through the proxy minus direct (goal p99 < 0.5 ms);
* highest sustained relay rate: the Gateway writes as fast as the path takes (goal > 20,000 msg/s);
* the proxy's CPU at a busy bot's 200 messages/s (goal < 3 % of a core) and its RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from gatewatch.localstack.net import free_port, url_answers  # noqa: E402
from gatewatch.localstack.process import gatewatch_command  # noqa: E402
from gatewatch.localstack.servers import wait_until  # noqa: E402

_LEN = struct.Struct(">I")


def frame(*fields: object) -> bytes:
    payload = "".join(f"{f}\0" for f in fields).encode()
    return _LEN.pack(len(payload)) + payload


REQ_MKT_DATA = frame(1, 11, 1, 756733, "SPY", "STK", "", 0, "", "", "SMART", "", "USD", "SPY", "SPY", 0, "", 0, 0, "")


class Text:
    """The text protocol at 178: what the client sends and how a tick carries its stamp."""

    versions = b"v157..178"
    hello = frame(178, "20260101 09:30:00 EST")
    requests = frame(71, 2, 7, "") + REQ_MKT_DATA
    connect_burst = frame(15, 1, "DU1234567") + frame(9, 1, 1)

    @staticmethod
    def tick(stamp: object) -> bytes:
        return frame(1, 6, 1, 1, stamp, 100, 0)

    @staticmethod
    def stamp(payload: bytes) -> int:
        return int(payload.split(b"\0", 5)[4])


class Protobuf:
    """IBKR's protobuf messages at 226 (4-byte ids; id - 200 is the text message's)."""

    versions = b"v100..226"
    hello = frame(226, "20260101 09:30:00 EST")

    def __init__(self) -> None:
        from simulator.protobuf import message_class

        self._cls = message_class
        start = message_class("StartApiRequest")(clientId=7)
        mkt = message_class("MarketDataRequest")(reqId=1)
        mkt.contract.symbol, mkt.contract.secType, mkt.contract.conId = "SPY", "STK", 756733
        self.requests = self.pb(271, start) + self.pb(201, mkt)
        self.connect_burst = (
            self.pb(215, message_class("ManagedAccounts")(accountsList="DU1234567"))
            + self.pb(209, message_class("NextValidId")(orderId=1))
        )
        self._tick = message_class("TickPrice")
        self._from = self._tick.FromString

    @staticmethod
    def pb(msg_id: int, msg: object) -> bytes:
        payload = _LEN.pack(msg_id) + msg.SerializeToString()  # type: ignore[attr-defined]
        return _LEN.pack(len(payload)) + payload

    def tick(self, stamp: object) -> bytes:
        return self.pb(201, self._tick(reqId=1, tickType=1, price=450.25, size=str(stamp), attrMask=0))

    def stamp(self, payload: bytes) -> int:
        return int(self._from(payload[4:]).size)


WIRE: Text | Protobuf = Text()


class Gateway:
    """The synthetic Gateway: handshake, then ticks at a rate (``rate`` None: as fast as it goes)."""

    def __init__(self) -> None:
        self.port = 0
        self.rate: float | None = 1000.0
        self.seconds = 5.0
        self.done = asyncio.Event()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readexactly(4)
            (n,) = _LEN.unpack(await reader.readexactly(4))
            await reader.readexactly(n)
            writer.write(WIRE.hello)
            for _ in range(2):  # startApi, reqMktData
                (n,) = _LEN.unpack(await reader.readexactly(4))
                await reader.readexactly(n)
            writer.write(WIRE.connect_burst)
            await writer.drain()
            if self.rate is None:
                await self._flood(writer)
            else:
                await self._paced(writer, self.rate)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self.done.set()

    async def _paced(self, writer: asyncio.StreamWriter, rate: float) -> None:
        start = time.perf_counter()
        sent = 0
        total = int(rate * self.seconds)
        while sent < total:
            due = min(total, int((time.perf_counter() - start) * rate) + 1)
            while sent < due:
                writer.write(WIRE.tick(time.perf_counter_ns()))
                sent += 1
            await writer.drain()
            await asyncio.sleep(0.0005)
        writer.write(WIRE.tick(-1))  # end marker
        await writer.drain()

    async def _flood(self, writer: asyncio.StreamWriter) -> None:
        block = WIRE.tick(450) * 2000
        deadline = time.perf_counter() + self.seconds
        while time.perf_counter() < deadline:
            writer.write(block)
            await writer.drain()


async def client(port: int, *, count_only: bool, seconds: float) -> tuple[list[float], int, float]:
    """Connect as a bot; return (latencies in ms, frames received, seconds receiving)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"API\0" + _LEN.pack(len(WIRE.versions)) + WIRE.versions)
    (n,) = _LEN.unpack(await reader.readexactly(4))
    await reader.readexactly(n)
    writer.write(WIRE.requests)
    for _ in range(2):
        (n,) = _LEN.unpack(await reader.readexactly(4))
        await reader.readexactly(n)
    latencies: list[float] = []
    frames = 0
    start = time.perf_counter()
    if count_only:
        size = len(WIRE.tick(450))
        received = 0
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(1 << 16):
                received += len(chunk)
                if time.perf_counter() - start > seconds:
                    break
        frames = received // size
    else:
        while True:
            (n,) = _LEN.unpack(await reader.readexactly(4))
            payload = await reader.readexactly(n)
            now = time.perf_counter_ns()
            stamp = WIRE.stamp(payload)
            if stamp < 0:
                break
            latencies.append((now - stamp) / 1e6)
            frames += 1
    elapsed = time.perf_counter() - start
    writer.close()
    return latencies, frames, elapsed


@contextlib.contextmanager
def one_core(proc: psutil.Process) -> Iterator[None]:
    """The proxy on the last core, this process on the others (the relay-rate figure is per core)."""
    mine = os.sched_getaffinity(0)
    cores = sorted(mine)
    try:
        proc.cpu_affinity([cores[-1]])
        if len(cores) > 1:
            os.sched_setaffinity(0, set(cores[:-1]))
        yield
    finally:
        proc.cpu_affinity(cores)
        os.sched_setaffinity(0, mine)


@contextlib.contextmanager
def proxy_process(upstream: int, nice: int = 0) -> Iterator[tuple[int, psutil.Process]]:
    """``gatewatch proxy`` as an operator runs it."""
    listen, metrics = free_port(), free_port()
    cmd = gatewatch_command(
        "proxy", "--listen", f"127.0.0.1:{listen}", "--upstream", f"127.0.0.1:{upstream}",
        "--metrics", f"127.0.0.1:{metrics}", "--control-port", "0",
    )  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if nice:
        os.setpriority(os.PRIO_PROCESS, proc.pid, nice)
    try:
        wait_until(lambda: url_answers(f"http://127.0.0.1:{metrics}/healthz"), 20, "the proxy's /healthz")
        yield listen, psutil.Process(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)


async def run_once(gw: Gateway, port: int, *, rate: float | None, seconds: float) -> tuple[list[float], int, float]:
    gw.rate, gw.seconds, gw.done = rate, seconds, asyncio.Event()
    result = await client(port, count_only=rate is None, seconds=seconds)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(gw.done.wait(), 10)
    return result


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1] if len(values) > 1 else float("nan")


async def main(seconds: float, nice: int = 0) -> dict[str, float]:
    gw = Gateway()
    await gw.start()
    out: dict[str, float] = {}
    try:
        direct, _, _ = await run_once(gw, gw.port, rate=1000, seconds=seconds)
        _, direct_frames, direct_s = await run_once(gw, gw.port, rate=None, seconds=3)
        with proxy_process(gw.port, nice) as (port, proc):
            await run_once(gw, port, rate=1000, seconds=1)  # warm-up
            proxied, _, _ = await run_once(gw, port, rate=1000, seconds=seconds)
            with one_core(proc):
                _, flood_frames, flood_s = await run_once(gw, port, rate=None, seconds=3)
            cpu0, t0 = sum(proc.cpu_times()[:2]), time.perf_counter()
            await run_once(gw, port, rate=200, seconds=max(seconds, 10))
            cpu1, t1 = sum(proc.cpu_times()[:2]), time.perf_counter()
            out["rss_mib"] = proc.memory_info().rss / 2**20
    finally:
        await gw.stop()
    out.update(
        direct_p50_ms=pct(direct, 0.5),
        direct_p99_ms=pct(direct, 0.99),
        proxied_p50_ms=pct(proxied, 0.5),
        proxied_p99_ms=pct(proxied, 0.99),
        proxied_p90_ms=pct(proxied, 0.9),
        proxied_p999_ms=pct(proxied, 0.999),
        load=os.getloadavg()[0],
        direct_max_rate=direct_frames / direct_s,
        proxy_max_rate=flood_frames / flood_s,
        cpu_at_200=(cpu1 - cpu0) / (t1 - t0),
    )
    out["added_p50_ms"] = out["proxied_p50_ms"] - out["direct_p50_ms"]
    out["added_p99_ms"] = out["proxied_p99_ms"] - out["direct_p99_ms"]
    return out


def report(r: dict[str, float]) -> str:
    rows = [
        ("added latency p50 at 1,000 msg/s", f"{r['added_p50_ms'] * 1000:.0f} µs "
         f"(direct {r['direct_p50_ms'] * 1000:.0f} µs, proxied {r['proxied_p50_ms'] * 1000:.0f} µs)", "-"),
        ("added latency p99 at 1,000 msg/s", f"{r['added_p99_ms'] * 1000:.0f} µs "
         f"(direct {r['direct_p99_ms'] * 1000:.0f} µs, proxied {r['proxied_p99_ms'] * 1000:.0f} µs)", "< 500 µs"),
        ("highest sustained relay rate, one core, decoding on", f"{r['proxy_max_rate']:,.0f} msg/s "
         f"(direct {r['direct_max_rate']:,.0f} msg/s)", "> 20,000 msg/s"),
        ("proxy CPU at 200 msg/s", f"{r['cpu_at_200'] * 100:.2f} % of a core", "< 3 %"),
        ("proxy RSS after the runs", f"{r['rss_mib']:.1f} MiB", "-"),
        ("proxied latency p90 / p99.9 (the tail)", f"{r['proxied_p90_ms'] * 1000:.0f} µs / "
         f"{r['proxied_p999_ms'] * 1000:.0f} µs", "-"),
        ("machine load average (1 min) at the end", f"{r['load']:.2f} on {os.cpu_count()} cores", "-"),
    ]  # fmt: skip
    lines = ["| figure | measured | goal |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the latency run")
    parser.add_argument("--protobuf", action="store_true",
                        help="IBKR's protobuf messages at server version 226 instead of the text protocol at 178")
    parser.add_argument("--proxy-nice", type=int, default=0,
                        help="run the proxy at this scheduling priority (negative: ahead of other work; root only)")
    args = parser.parse_args()
    if args.protobuf:
        WIRE = Protobuf()
    print(report(asyncio.run(main(args.seconds, args.proxy_nice))))
