"""The one benchmark command: every figure gatewatch promises, measured side by side in one run.

    .venv/bin/python bench/run_all.py [--soak-minutes 30] [--write docs/performance.md] [--quick]

Prints the machine (CPU model, cores, RAM, Python, OS) and a table of figures with their goals,
as ratios where a peer exists; with --write, puts the same into docs/performance.md between the
generated-section markers. Reuses the other bench scripts' functions (bench_exporter's disconnect
detection, bench_probes' event-driven fill measurement) and the e2e helper's real Prometheus /
Alertmanager from the local stack (gatewatch.localstack); runs the simulator bench as is.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from loguru import logger  # noqa: E402

from bench.bench_exporter import (  # noqa: E402
    WINDOWS,
    bare_process,
    exporter_process,
    shipped_scrape_interval,
    simulator_process,
)
from bench.bench_exporter import bench_overhead as bench_exporter_overhead  # noqa: E402
from bench.measure import cpu_share, percentile, placement_cpus, scrape_times  # noqa: E402
from gatewatch.config import GatewatchConfig  # noqa: E402
from gatewatch.localstack import configs as stack_configs  # noqa: E402
from gatewatch.localstack import servers  # noqa: E402
from gatewatch.localstack.net import free_ports  # noqa: E402
from gatewatch.localstack.process import Process, gatewatch_command, start_exporter  # noqa: E402
from gatewatch.localstack.smtp import MailSink  # noqa: E402
from gatewatch.rehearsal import configs  # noqa: E402
from gatewatch.rehearsal.observe import scrape  # noqa: E402
from gatewatch.rehearsal.runner import Rehearsal, RehearsalOptions  # noqa: E402

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


@dataclass
class Figure:
    section: str
    name: str
    value: str
    goal: str = ""
    verdict: str = ""


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    peer_outputs: dict[str, str] = field(default_factory=dict)

    def add(self, section: str, name: str, value: str, goal: str = "", ok: bool | None = None) -> None:
        verdict = "" if ok is None else ("met" if ok else "MISSED")
        self.figures.append(Figure(section, name, value, goal, verdict))
        print(f"  {section:<12} {name:<58} {value:>14}  {goal:<12} {verdict}", flush=True)


# --------------------------------------------------------------------------- machine

def machine() -> dict[str, str]:
    model = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    os_name = platform.platform()
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = f"{line.split('=', 1)[1].strip(chr(34))} (kernel {platform.release()})"
    return {
        "CPU": model,
        "cores": f"{os.cpu_count()} logical ({psutil.cpu_count(logical=False) or '?'} physical)",
        "RAM": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "Python": platform.python_version(),
        "OS": os_name,
        "load at start (1 min)": f"{os.getloadavg()[0]:.2f}",
    }


# --------------------------------------------------------------------------- a simulator + exporter pair

@contextlib.contextmanager
def sim_and_exporter(work: Path, symbols: list[str], tick_hz: float = 4.0, active: bool = False,
                     duration: float = 600.0, compressed: bool = True,
                     ) -> Iterator[tuple[Process, Process, configs.Ports]]:
    """A simulator and an exporter as processes (as in the stack); the exporter's config is the
    rehearsal's, with the active probes on or off. ``compressed=False`` keeps the shipped probe
    intervals (a production session's cost) instead of the rehearsal's shortened ones."""
    ports = configs.Ports(*free_ports(6))
    config = configs.gatewatch_config(None, ports, duration, work, symbols, "DU1234567")
    config.active.enabled = active
    if not compressed:
        shipped = GatewatchConfig().probes
        config.probes.reconciliation_interval = shipped.reconciliation_interval
        config.probes.historical.interval = shipped.historical.interval
    config_path = configs.write_gatewatch_config(config, work / "gatewatch.yaml")
    sim = Process("simulator", gatewatch_command(
        "sim", "--port", str(ports.gateway), "--control-port", str(ports.control), "--seed", "1",
        "--symbols", ",".join(symbols), "--tick-hz", f"{tick_hz:g}"), work / "simulator.log",
        ready_url=f"http://127.0.0.1:{ports.control}/healthz").start()
    exporter: Process | None = None
    try:
        sim.wait_ready(30)
        exporter = start_exporter(config_path, ports.exporter, work / "exporter.log")
        wait_connected(f"http://127.0.0.1:{ports.exporter}/metrics", exporter)
        yield sim, exporter, ports
    finally:
        for p in (exporter, sim):
            if p is not None:
                p.stop()


def wait_connected(url: str, process: Process, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError(f"{process.name} died:\n{process.log_tail()}")
        with contextlib.suppress(OSError, ValueError):
            if scrape(url).get("gatewatch_gateway_connected") == 1.0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{url}: not connected within {timeout:g}s")


# --------------------------------------------------------------------------- detection

def bench_detection(report: Report, trials: int) -> None:
    import bench_exporter

    logger.remove()
    gauge, _renders = asyncio.run(bench_exporter.disconnect_detection(trials, 10))
    report.add("detection", f"disconnect -> connected gauge 0, median of {trials} (ms)",
               f"{statistics.median(gauge) * 1000:.1f}", "< 500", statistics.median(gauge) < 0.5)
    report.add("detection", "disconnect -> connected gauge 0, worst (ms)", f"{max(gauge) * 1000:.1f}", "< 500",
               max(gauge) < 0.5)


def bench_detection_email(report: Report, trials: int, work: Path) -> None:
    """Disconnect to GatewayDown e-mail through real Prometheus + Alertmanager (the e2e overlay)."""
    if servers.binaries_missing():
        report.notes.append(f"e-mail detection skipped: missing {servers.binaries_missing()}")
        return
    for label, max_for in (("rule `for` removed (pipeline only)", "0s"), ("shipped `for: 10s`", "1h")):
        timing = stack_configs.Timing(interval=0.25, for_scale=0.0 if max_for == "0s" else 1.0, group_scale=0.0)
        delays: list[float] = []
        folder = work / f"email-{max_for}"
        folder.mkdir(parents=True, exist_ok=True)
        with sim_and_exporter(folder / "pair", ["SPY", "QQQ", "IWM"]) as (_sim, _exporter, ports), \
                MailSink() as sink:
            smtp = stack_configs.local_smtp_settings(sink.host, sink.port, folder / "no_password")
            am_config = stack_configs.render_alertmanager_config(folder / "am", smtp, timing)
            with servers.running_alertmanager(am_config, folder / "am") as am:
                prom_config = stack_configs.render_prometheus_config(
                    folder / "prom", exporter=f"127.0.0.1:{ports.exporter}", alertmanager=am.address,
                    timing=timing)
                with servers.running_prometheus(prom_config, folder / "prom") as prom:
                    prom.wait_for_target_up("gatewatch", timeout=30)
                    prom.wait_for_alertmanager(timeout=30)
                    time.sleep(2)
                    for _ in range(trials):
                        since = time.time()
                        post_fault(ports.control, {"fault": "disconnect", "for": "14s"})
                        mail = sink.wait_for(lambda m: "GatewayDown" in m.subject and "RESOLVED" not in m.subject
                                             .upper(), timeout=60, what="GatewayDown", since=since)
                        delays.append(mail.received_at - since)
                        sink.wait_for(lambda m: "GatewayDown" in m.subject and "RESOLVED" in m.subject.upper(),
                                      timeout=60, what="GatewayDown resolved", since=mail.received_at)
                        time.sleep(2)
        goal = "< 2 s" if max_for == "0s" else "for + 2 s"
        limit = 2.0 if max_for == "0s" else 12.0
        report.add("detection", f"disconnect -> alert e-mail, {label}, median of {trials} (s)",
                   f"{statistics.median(delays):.2f}", goal, statistics.median(delays) < limit)
    report.notes.append("E-mail path: Prometheus and Alertmanager from the local stack (gatewatch.localstack) overlay"
                        " at 250 ms scrape/evaluation, group_wait 0s; the shipped route's critical group_wait"
                        " (5 s) adds to the shipped figure in production.")


def post_fault(control_port: int, body: dict[str, object]) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{control_port}/faults", data=json.dumps(body).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        response.read()


# --------------------------------------------------------------------------- fill latency

async def _polled_fills(config: object, sim_state: object, n: int, period: float) -> list[tuple[float, float]]:
    """The alternative: a loop that looks at the order once a second."""
    from probes.active.runner import ActiveSession

    pairs = []
    async with ActiveSession(config) as session:  # type: ignore[arg-type]
        ctx = await session.context()
        for _ in range(n):
            _, ask = await ctx.orders.quote(ctx.instrument)
            sent = ctx.orders.limit(ctx.instrument, "BUY", ask, probe="bench-poll")
            while sent.trade.filled() <= 0:
                await asyncio.sleep(period)
            measured = time.time() - sent.sent_at
            await ctx.orders.close(ctx.instrument, 1, probe="bench-poll")
            order = next(o for o in sim_state()["orders"] if o["orderRef"] == sent.order_ref)  # type: ignore[operator]
            pairs.append((measured, order["filled_at"] - order["received_at"]))
    return pairs


def bench_fill_error(report: Report, fills: int) -> None:
    import bench_probes

    from simulator import running_simulator

    logger.remove()
    bench_probes.FILLS = fills
    with running_simulator(port=0, control_port=0, seed=3, symbols=["SPY"]) as sim:
        event = asyncio.run(bench_probes.measure_fills(bench_probes.config_for(sim.port, tempfile.mkdtemp()),
                                                       sim.state))
        polled = asyncio.run(_polled_fills(bench_probes.config_for(sim.port, tempfile.mkdtemp()), sim.state,
                                           fills, 1.0))
    event_err = [abs(m - t) * 1000 for m, t in event]
    poll_err = [abs(m - t) * 1000 for m, t in polled]
    report.add("fill latency", f"event-driven error vs simulator stamps, median of {len(event)} (ms)",
               f"{statistics.median(event_err):.2f}", "< 2", statistics.median(event_err) < 2)
    report.add("fill latency", "event-driven error, worst (ms)", f"{max(event_err):.2f}")
    report.add("fill latency", f"1 s polling loop error, median of {len(polled)} (ms)",
               f"{statistics.median(poll_err):.1f}")
    report.add("fill latency", "1 s polling loop error, worst (ms)", f"{max(poll_err):.1f}")
    report.add("fill latency", "polling error / event-driven error (median ratio)",
               f"{statistics.median(poll_err) / max(statistics.median(event_err), 1e-6):.0f}x")


# --------------------------------------------------------------------------- overhead vs bare ib_async

def bench_overhead(report: Report, work: Path, seconds: float) -> None:
    """The exporter beside a bare ib_async client on one simulator, measured in the same window.

    The same processes and measurement as ``bench_exporter.py --only overhead`` (the shipped
    configuration, each client half of the window on the simulator's CPU), one run, not scraped
    and then scraped at the shipped Prometheus interval.
    """
    symbols = ["SPY", "QQQ", "IWM"]
    every = shipped_scrape_interval()
    placement = "swapped" if placement_cpus() is not None else "free"
    run = bench_exporter_overhead(1, seconds, every, [placement], with_scrape_cost=False)[0].shares
    (work / "overhead").mkdir(parents=True, exist_ok=True)
    with simulator_process(symbols, 4.0) as (port, _sim_pid), \
            exporter_process(port, symbols, work / "overhead") as (listen, exporter), \
            bare_process(port, symbols) as bare:  # memory and scrape times, after the CPU windows
        time.sleep(5)
        exp_rss, bare_rss = exporter.memory_info().rss, bare.memory_info().rss
        scrapes = scrape_times(listen, 1000)
    where = "each half of the window on the simulator's CPU" if placement == "swapped" else "unpinned"
    for window in WINDOWS:
        exp_cpu, bare_cpu = run[(placement, window)]
        ratio = exp_cpu / bare_cpu if bare_cpu else float("inf")
        label = f"{window}{f' every {every:g} s' if window == 'scraped' else ''}"
        report.add("overhead", f"exporter CPU, 3 symbols at 4 ticks/s, shipped intervals, {label}, {seconds:g} s "
                   f"({where}; % of a core)", f"{exp_cpu * 100:.3f}")
        report.add("overhead", "bare ib_async script, same subscriptions, same window (% of a core)",
                   f"{bare_cpu * 100:.3f}")
        report.add("overhead", f"exporter / bare CPU, {label}", f"{ratio:.2f}x", "<= 1.3x", ratio <= 1.3)
    report.add("overhead", "exporter RSS (MB)", f"{exp_rss / 1e6:.1f}")
    report.add("overhead", "bare script RSS (MB)", f"{bare_rss / 1e6:.1f}")
    report.add("overhead", "exporter / bare RSS", f"{exp_rss / bare_rss:.2f}x")
    p99 = percentile(scrapes, 0.99)
    report.add("overhead", "/metrics p50 / p99 over HTTP keep-alive, 1000 scrapes, 3 symbols (ms)",
               f"{percentile(scrapes, 0.5) * 1000:.2f} / {p99 * 1000:.2f}", "p99 < 5", p99 < 0.005)


# --------------------------------------------------------------------------- scale

def bench_scale(report: Report, work: Path, seconds: float) -> None:
    for n in (1, 10, 100):
        symbols = (["SPY", "QQQ", "IWM"] + [f"S{i:03d}" for i in range(1, 101)])[:n]
        with sim_and_exporter(work / f"scale-{n}", symbols) as (_sim, exporter, ports):
            url = f"http://127.0.0.1:{ports.exporter}/metrics"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # every stream delivering before measuring
                if len(scrape(url).series("gatewatch_quote_ticks_total")) >= n:
                    break
                time.sleep(0.5)
            time.sleep(3)
            share = cpu_share(exporter.pid, seconds)
            times = scrape_times(ports.exporter, 200)
            size = len(urllib.request.urlopen(url, timeout=5).read())
        goal, ok = ("< 15%", share < 0.15) if n == 100 else ("", None)
        report.add("scale", f"{n} symbols at 4 ticks/s: exporter CPU (% of a core)", f"{share * 100:.2f}", goal, ok)
        report.add("scale", f"{n} symbols: /metrics p50 / p99 (ms), body {size / 1024:.0f} KiB",
                   f"{percentile(times, 0.5) * 1000:.2f} / {percentile(times, 0.99) * 1000:.2f}")


# --------------------------------------------------------------------------- soak

def bench_soak(report: Report, work: Path, minutes: float, tick_hz: float) -> None:
    """A compressed session: the whole stack minus Prometheus, quotes ticking fast, probes scheduled."""
    duration = minutes * 60
    warm_up = min(120.0, duration / 5)
    options = RehearsalOptions(duration=duration, scenario=ROOT / "scenarios" / "calm.yaml",
                               out_dir=work / "soak", tick_hz=tick_hz, use_prometheus=False,
                               progress_every=max(30.0, duration / 10))
    samples: list[tuple[float, int, int, int]] = []
    tasks: list[float] = []
    with Rehearsal(options) as rehearsal:
        rehearsal.start()
        assert rehearsal.exporter is not None
        process = psutil.Process(rehearsal.exporter.pid)
        start = rehearsal.window_start
        next_at = start + warm_up

        def sample(_: Rehearsal) -> None:
            nonlocal next_at
            if time.time() >= next_at:
                fds = min(process.num_fds() for _ in range(3))
                samples.append((time.time() - start, process.memory_info().rss, fds, process.num_threads()))
                tasks.append(scrape(rehearsal.metrics_url).get("gatewatch_exporter_asyncio_tasks"))
                next_at = time.time() + max(5.0, duration / 60)

        rehearsal.play(on_tick=sample)
        runs = scrape(rehearsal.metrics_url).total("gatewatch_probe_runs_total", kind="active")
        ticks = scrape(rehearsal.metrics_url).total("gatewatch_quote_ticks_total")
        result = rehearsal.finish()
    first, last = samples[0], samples[-1]
    peak = max(s[1] for s in samples)
    growth = (last[1] - first[1]) / 1e6
    report.add("soak", f"{minutes:g} min at {tick_hz:g} ticks/s x 3 symbols: quote updates / active probe results",
               f"{ticks:.0f} / {runs:.0f}")
    report.add("soak", f"RSS after {warm_up:g}s warm-up -> end (MB)", f"{first[1] / 1e6:.1f} -> {last[1] / 1e6:.1f}")
    report.add("soak", "RSS growth after warm-up (MB)", f"{growth:+.2f}", "< 5", growth < 5)
    report.add("soak", "RSS peak (MB)", f"{peak / 1e6:.1f}")
    report.add("soak", "open fds after warm-up -> end", f"{first[2]} -> {last[2]}", "no growth", last[2] <= first[2])
    report.add("soak", "threads after warm-up -> end", f"{first[3]} -> {last[3]}", "no growth", last[3] <= first[3])
    report.add("soak", "probe orders left at the broker", str(len(result.ledger.open_probe_orders)), "0",
               not result.ledger.problems)
    third = max(1, len(tasks) // 3)
    floor0, floor1 = min(tasks[:third]), min(tasks[-third:])
    report.add("soak", "asyncio tasks, floor of first -> last third of samples", f"{floor0:.0f} -> {floor1:.0f}",
               "no growth", floor1 <= floor0)
    report.notes.append("Asyncio tasks come from the exporter's gatewatch_exporter_asyncio_tasks gauge; active "
                        "probe runs add tasks while they last, so the floors of the first and last thirds compare.")


# --------------------------------------------------------------------------- peers

def run_peer(report: Report, script: str, args: list[str]) -> None:
    path = ROOT / "bench" / script
    if not path.exists():
        report.notes.append(f"{script}: not present")
        return
    done = subprocess.run([sys.executable, str(path), *args], cwd=ROOT, capture_output=True, text=True, timeout=900)
    report.peer_outputs[f"{script} {' '.join(args)}".strip()] = (done.stdout or done.stderr).strip()


def run_peers(report: Report) -> None:
    run_peer(report, "bench_simulator.py", ["--seconds", "10"])
    run_peer(report, "bench_probes.py", [])


# --------------------------------------------------------------------------- output

def markdown(report: Report, host: dict[str, str], args: argparse.Namespace, took: float) -> str:
    lines = [BEGIN, "", f"Measured {time.strftime('%Y-%m-%d %H:%M %Z')} with `bench/run_all.py "
             f"--soak-minutes {args.soak_minutes:g}` in {took / 60:.1f} min.", "",
             "| machine | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in host.items()]
    lines += ["", "| area | figure | value | goal | |", "|---|---|---|---|---|"]
    lines += [f"| {f.section} | {f.name} | {f.value} | {f.goal} | {f.verdict} |" for f in report.figures]
    if report.notes:
        lines += [""] + [f"- {n}" for n in report.notes]
    for name, output in report.peer_outputs.items():
        lines += ["", f"`{name}`:", "", "```", output, "```"]
    lines += ["", END]
    return "\n".join(lines)


def write_doc(path: Path, section: str) -> None:
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soak-minutes", type=float, default=3.0, help="soak length (default 3; the goal: 30)")
    parser.add_argument("--soak-tick-hz", type=float, default=25.0, help="quote updates per symbol per second")
    parser.add_argument("--quick", action="store_true", help="fewer trials, shorter windows")
    parser.add_argument("--only", default="", help="comma list: detection,email,fill,overhead,scale,soak,peers")
    parser.add_argument("--write", type=Path, default=None, help="put the results into this markdown file")
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    wanted = set(filter(None, args.only.split(","))) or {"detection", "email", "fill", "overhead", "scale",
                                                          "soak", "peers"}
    host = machine()
    for k, v in host.items():
        print(f"{k:>22}: {v}")
    report = Report()
    started = time.monotonic()
    trials, window = (3, 10.0) if args.quick else (10, 30.0)
    with tempfile.TemporaryDirectory(prefix="gatewatch-bench-") as tmp:
        work = Path(tmp)
        steps = [
            ("detection", lambda: bench_detection(report, trials)),
            ("email", lambda: bench_detection_email(report, 2 if args.quick else 3, work)),
            ("fill", lambda: bench_fill_error(report, 5 if args.quick else 20)),
            # long enough for every shipped probe interval (historical, reconciliation: 60 s) to count
            ("overhead", lambda: bench_overhead(report, work, window * 4)),
            ("scale", lambda: bench_scale(report, work, window)),
            ("soak", lambda: bench_soak(report, work, args.soak_minutes, args.soak_tick_hz)),
            ("peers", lambda: run_peers(report)),
        ]
        for name, step in steps:
            if name not in wanted:
                continue
            try:
                step()
            except Exception as exc:  # one broken measurement must not hide the others
                report.notes.append(f"{name}: not measured: {exc!r}")
                print(f"  {name}: FAILED {exc!r}", flush=True)
    took = time.monotonic() - started
    section = markdown(report, host, args, took)
    if args.write:
        write_doc(args.write, section)
        print(f"written to {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
