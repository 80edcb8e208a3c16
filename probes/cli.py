"""``gatewatch probe run``: the active probes once, a pass/fail table, JUnit XML, exit 0 only if all pass.

Why JUnit: CI systems and the evidence bundle read it without knowing gatewatch.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from gatewatch.config import add_config_argument, load_config
from gatewatch.logs import setup_logging
from probes.active.runner import PROBES, RunReport, run_probes, unwind_bound
from probes.active.stopping import run_until_signalled


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    run = sub.add_parser("run", help="run the active paper-order probes once")
    add_config_argument(run)
    run.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        choices=list(PROBES),
        help=f"run only these probes: {', '.join(PROBES)}",
    )
    run.add_argument("--junit", type=Path, default=None, help="write JUnit XML here")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    setup_logging(config.exporter.log_level, config.exporter.log_json)
    report, stop = run_until_signalled(
        lambda event: run_probes(config, only=args.only, stop=event),
        unwinding="unwinding the running probe (cancel, close)",
        bound=unwind_bound(config),
    )
    if report is None:
        print("gatewatch probe run: stopped at once (second signal); the next run's recovery cleans up",
              file=sys.stderr)
        return stop.exit_status
    print(format_table(report))
    if args.junit:
        write_junit(report, args.junit)
    if report.bad_file:
        print(f"gatewatch probe run: {report.bad_file}", file=sys.stderr)
        return 2
    if stop.signal is not None:
        return stop.exit_status
    return 0 if report.ok else 1


def format_table(report: RunReport) -> str:
    """A fixed-width pass/fail table with timings."""
    width = max((len(r.name) for r in report.results), default=5)
    lines = [f"active probes, run {report.run_id}", f"{'probe'.ljust(width)}  result  seconds  detail"]
    for r in report.results:
        lines.append(f"{r.name.ljust(width)}  {'PASS' if r.ok else 'FAIL':<6}  {r.duration:7.2f}  {r.detail}")
    passed = sum(r.ok for r in report.results)
    lines.append(f"{passed}/{len(report.results)} passed")
    if report.recovered:
        lines.append("recovered from an earlier run: " + "; ".join(report.recovered))
    if report.stopped:
        where = "between probes" if report.stopped == "-" else f"during {report.stopped}"
        lines.append(f"stopped {where} by a signal; unwound: " + ("; ".join(report.cleaned) or "nothing held"))
    return "\n".join(lines)


def write_junit(report: RunReport, path: Path) -> None:
    """One <testcase> per probe; failures carry the probe's reason."""
    suite = ET.Element(
        "testsuite",
        name="gatewatch.active",
        tests=str(len(report.results)),
        failures=str(sum(not r.ok for r in report.results)),
        time=f"{sum(r.duration for r in report.results):.3f}",
    )
    for r in report.results:
        case = ET.SubElement(
            suite, "testcase", classname="gatewatch.active", name=r.name, time=f"{r.duration:.3f}"
        )
        if r.ok:
            ET.SubElement(case, "system-out").text = r.detail
        else:
            ET.SubElement(case, "failure", message=r.detail[:200]).text = r.detail
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="gatewatch probe")
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
