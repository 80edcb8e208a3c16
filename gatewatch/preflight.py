"""``gatewatch preflight``: the pre-validation checklist, automated.

Prints one line per item with a mark (PASS, FAIL, WARN, INFO) and, for each failure, the FIX.
Exit status: 0 when nothing blocks the session, 1 on any blocking failure, 2 on a configuration
error (raised as ConfigError and reported by the command line, naming the field).

Everything here talks to the Gateway through the ordinary TWS API and works unchanged against a
real paper IB Gateway; the simulator is just the default target.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import TextIO

from gatewatch.checks import CheckResult, passed
from gatewatch.checks.gateway import gateway_checks, preflight_client_id
from gatewatch.checks.host import check_cpu_memory, check_disk, check_ntp
from gatewatch.checks.market import check_market
from gatewatch.config import GatewatchConfig, add_config_argument, load_config
from gatewatch.logs import setup_logging
from gatewatch.market_calendar import EASTERN
from gatewatch.trading_hours import MarketHours

MARKS = {"pass": "PASS", "fail": "FAIL", "warn": "WARN", "info": "INFO"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_argument(parser)


async def run_checks(config: GatewatchConfig, source: str, now: datetime | None = None) -> list[CheckResult]:
    """Every check, host ones first (they do not depend on the Gateway); market hours by the one rule
    (the Gateway's contract hours, the calendar as fallback), as the exporter judges them."""
    now = now or datetime.now(UTC)
    results = [passed("configuration valid", f"{source}; preflight client id {preflight_client_id(config)}")]
    results.append(check_ntp())
    results += check_cpu_memory(config)
    results.append(check_disk(config))
    hours = MarketHours()
    gateway = await gateway_checks(config, now.astimezone(EASTERN).date(), hours)
    # listed second, as before, though judged once the Gateway has said what its hours are
    results.insert(1, check_market(config, now, hours))
    return results + gateway


def print_report(results: list[CheckResult], out: TextIO) -> None:
    width = max(len(r.name) for r in results)
    for result in results:
        print(f"[{MARKS[result.status]}] {result.name.ljust(width)}  {result.detail}", file=out)
        if result.status in ("fail", "warn") and result.fix:
            print(f"       {''.ljust(width)}  FIX: {result.fix}", file=out)
    blocking = [r for r in results if r.blocks]
    warnings = [r for r in results if r.status == "warn"]
    if blocking:
        print(
            f"\npreflight FAILED: {len(blocking)} blocking item(s): {', '.join(r.name for r in blocking)}",
            file=out,
        )
    else:
        print(f"\npreflight passed ({len(warnings)} warning(s)): the session may start", file=out)


def run(args: argparse.Namespace) -> int:
    setup_logging("WARNING")
    config = load_config(args.config)
    results = asyncio.run(run_checks(config, args.config or "(default configuration)"))
    print_report(results, sys.stdout)
    return 1 if any(r.blocks for r in results) else 0
