"""Gateway-side checks over the TWS API: reachability, handshake, paper account, funds, positions,
open orders, clock skew against IB time and the probe instrument.

Why its own client id (see :mod:`gatewatch.ib.connect`): preflight runs while the exporter and the
probes may already be connected; a duplicate id would be refused (error 326) and could knock one of
them off. The connection is read-only: preflight never sends an order.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from ib_async import IB, Contract, Option, Stock
from loguru import logger

from gatewatch.checks import CheckResult, failed, passed
from gatewatch.checks.paper import judge_paper
from gatewatch.config import GatewatchConfig
from gatewatch.ib.account import the_account
from gatewatch.ib.clock import MIN_SPACING, ClockEstimator, OneConnection
from gatewatch.ib.connect import Client, client_id
from gatewatch.ib.connect import connect as connect_client
from gatewatch.ib.hours import load_contract_hours
from gatewatch.trading_hours import MarketHours
from probes.active.journal import JournalError, JournalReader
from probes.gateway import CurrentTimeRequester

CLOCK_SAMPLES = 4
CLOCK_TIMEOUT = 3.0


def preflight_client_id(config: GatewatchConfig) -> int:
    return client_id(config.gateway, Client.PREFLIGHT)


@dataclass
class GatewayFacts:
    """What the handshake learnt, for the report."""

    server_version: int = 0
    accounts: list[str] = field(default_factory=list)


async def check_tcp(host: str, port: int, timeout: float) -> CheckResult:
    name = "Gateway port reachable"
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as exc:
        return failed(
            name,
            f"nothing accepts TCP connections at {host}:{port} ({exc or type(exc).__name__})",
            "start IB Gateway (or the simulator: gatewatch sim) and check gateway.host/gateway.port "
            "(IB Gateway 4002 paper / 4001 live; TWS 7497 paper / 7496 live) and that the API is "
            "enabled in its settings with this host in 'Trusted IPs'",
        )
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return passed(name, f"{host}:{port} accepts TCP connections")


async def connect(ib: IB, config: GatewatchConfig) -> CheckResult:
    name = "API handshake"
    number = preflight_client_id(config)
    errors: list[str] = []

    def on_error(req_id: int, code: int, message: str, contract: object) -> None:
        if code in (326, 502, 504, 10141):
            errors.append(f"{code} {message}")

    ib.errorEvent += on_error
    try:
        await connect_client(ib, config.gateway, Client.PREFLIGHT, readonly=True)
    except (OSError, TimeoutError, ConnectionError) as exc:
        why = "; ".join(errors) or f"{type(exc).__name__}: {exc}"
        return failed(
            name,
            f"no API session with client id {number}: {why}",
            "check the Gateway is logged in, 'Enable ActiveX and Socket Clients' is on, this host is "
            f"trusted, and client id {number} is free (error 326 means it is in use)",
        )
    finally:
        ib.errorEvent -= on_error
    version = ib.client.serverVersion()
    return passed(name, f"connected read-only as client id {number}, server version {version}")


def check_paper(ib: IB, config: GatewatchConfig) -> list[CheckResult]:
    """The guard's paper rule on this connection's real port and managed accounts."""
    return judge_paper(config.gateway, int(getattr(ib.client, "port", -1)), ib.managedAccounts())


async def check_net_liquidation(ib: IB, config: GatewatchConfig, account: str) -> CheckResult:
    name = "net liquidation"
    minimum = config.preflight.min_net_liquidation
    values = await asyncio.wait_for(ib.accountSummaryAsync(account), config.gateway.request_timeout)
    found = [v for v in values if v.tag == "NetLiquidation" and (not account or v.account == account)]
    if not found:
        return failed(
            name,
            "the Gateway sent no NetLiquidation value",
            "check the account is funded and "
            "the Gateway's account data is available (Account window in the Gateway)",
        )
    value = float(found[0].value)
    currency = found[0].currency
    if value >= minimum:
        return passed(name, f"{value:,.0f} {currency} (need {minimum:,.0f})")
    return failed(
        name,
        f"{value:,.0f} {currency}, below preflight.min_net_liquidation {minimum:,.0f}",
        "reset the paper account balance in Client Portal (Settings > Paper Trading Account) or "
        "lower preflight.min_net_liquidation",
    )


def journal_leftovers(path: Path) -> tuple[list[str], str]:
    """Open probe orders the journal lists (read-only: preflight never creates the journal)."""
    if not path.exists():
        return [], f"no probe journal at {path}"
    try:
        with JournalReader(path) as journal:
            rows = journal.open_orders()
    except (JournalError, sqlite3.Error) as exc:
        return [], f"probe journal {path} unreadable: {exc}"
    return [f"{row.order_ref} ({row.status})" for row in rows], f"probe journal {path}"


async def check_positions_orders(ib: IB, config: GatewatchConfig) -> list[CheckResult]:
    """List positions and open orders; probe leftovers (orderRef prefix, or the journal) are failures."""
    prefix = config.active.order_ref_prefix
    timeout = config.gateway.request_timeout
    positions = [p for p in await asyncio.wait_for(ib.reqPositionsAsync(), timeout) if p.position]
    trades = await asyncio.wait_for(ib.reqAllOpenOrdersAsync(), timeout)
    listed = ", ".join(f"{p.contract.localSymbol or p.contract.symbol} {p.position:g}" for p in positions)
    results = [
        CheckResult(
            "positions",
            "info",
            f"{len(positions)} position(s){': ' + listed if listed else ''}",
            blocking=False,
        )
    ]
    ours = [t for t in trades if (t.order.orderRef or "").startswith(prefix)]
    others = [t for t in trades if t not in ours]
    results.append(
        CheckResult(
            "open orders",
            "info",
            f"{len(trades)} open order(s): {len(ours)} probe ({prefix}*), {len(others)} other",
            blocking=False,
        )
    )
    leftovers, source = journal_leftovers(Path(config.active.journal_path))
    name = "no probe leftovers"
    if ours or leftovers:
        refs = sorted({t.order.orderRef for t in ours} | set(leftovers))
        results.append(
            failed(
                name,
                f"probe orders still open: {', '.join(refs)} ({source})",
                "run: gatewatch flatten --config <file> (cancels only gatewatch-tagged orders and "
                "closes probe positions)",
            )
        )
    else:
        results.append(passed(name, f"no open order tagged {prefix}*; {source}: nothing open"))
    return results


async def sample_clock(ib: IB, samples: int = CLOCK_SAMPLES, timeout: float = CLOCK_TIMEOUT) -> ClockEstimator:
    """Time requests as the exporter's clock probe makes them (the one requester: spaced, time-boxed),
    each aimed at the predicted tick of IB's second, folded into the one interval estimator."""
    requester = CurrentTimeRequester(OneConnection(ib), timeout)
    estimator, rtt = ClockEstimator(), 0.0
    for index in range(samples):
        earliest = time.time() + (MIN_SPACING if index else 0.0)  # the requester's spacing, then aim
        try:
            sample = await requester.request(not_before=estimator.next_send_time(earliest, rtt))
        except TimeoutError:
            logger.warning("current-time request {} unanswered within {} s", index + 1, timeout)
            continue
        rtt = sample.rtt
        estimator.add(sample)
    return estimator


async def check_clock(ib: IB, config: GatewatchConfig) -> CheckResult:
    name = "clock skew against IB server time"
    limit = config.preflight.max_clock_skew
    bound = await sample_clock(ib)
    if not bound.known:
        return failed(
            name,
            "the Gateway answered no current-time request",
            "check the Gateway is responsive (restart it if it stays silent)",
        )
    detail = (
        f"host minus IB between {bound.lo:+.2f} s and {bound.hi:+.2f} s "
        f"({bound.samples} samples, IB time has 1 s resolution)"
    )
    fix = "synchronise the host clock (chrony/systemd-timesyncd) and re-run preflight"
    if bound.worst <= limit:
        return passed(name, detail + f"; within ±{limit:g} s")
    if bound.best > limit:
        return failed(name, detail + f"; outside ±{limit:g} s", fix)
    return CheckResult(name, "warn", detail + f"; cannot prove it is within ±{limit:g} s", fix, False)


async def check_instrument(ib: IB, config: GatewatchConfig, today: date) -> CheckResult:
    """The active probes' instrument must resolve: a stock qualifies; an option's expiry exists."""
    instrument = config.active.instrument
    name = f"probe instrument ({instrument.kind} {instrument.symbol})"
    timeout = config.gateway.request_timeout
    stock = Stock(instrument.symbol, "SMART", "USD")
    qualified = await asyncio.wait_for(ib.qualifyContractsAsync(stock), timeout)
    underlying = qualified[0] if qualified else None
    if not isinstance(underlying, Contract) or not underlying.conId:
        return failed(
            name,
            f"{instrument.symbol} did not qualify (no security definition)",
            "check active.instrument.symbol and the account's trading permissions",
        )
    if instrument.kind == "stock":
        return passed(
            name, f"{underlying.symbol} conId {underlying.conId} on {underlying.primaryExchange or 'SMART'}"
        )
    chains = await asyncio.wait_for(
        ib.reqSecDefOptParamsAsync(underlying.symbol, "", underlying.secType, underlying.conId), timeout
    )
    earliest = today + timedelta(days=instrument.min_days_to_expiry)
    expiries = sorted(
        {
            e
            for chain in chains
            if chain.exchange == "SMART"
            for e in chain.expirations
            if datetime.strptime(e, "%Y%m%d").date() >= earliest
        }
    )
    if not expiries:
        return failed(
            name,
            f"no option expiry on or after {earliest} in the SMART chain",
            "check option permissions for the account, or lower active.instrument.min_days_to_expiry",
        )
    expiry = expiries[0]
    option = Option(underlying.symbol, expiry, 0.0, instrument.right, "SMART", currency="USD")
    details = await asyncio.wait_for(ib.reqContractDetailsAsync(option), timeout)
    if not details:
        return failed(
            name,
            f"expiry {expiry} listed but no {instrument.right} contract details",
            "re-run later (chains update overnight) or check option permissions",
        )
    return passed(
        name,
        f"nearest expiry {expiry}: {len(details)} {instrument.right} strikes confirmed by contract details",
    )


async def gateway_checks(
    config: GatewatchConfig, today: date, hours: MarketHours | None = None
) -> list[CheckResult]:
    """Every Gateway check in order; later ones are reported as not run if the connection fails.

    ``hours`` receives the Gateway's contract hours for the market-hours item (left as it is, so the
    calendar decides, when the Gateway is unreachable or does not answer).
    """
    gateway = config.gateway
    results = [await check_tcp(gateway.host, gateway.port, gateway.connect_timeout)]
    skipped = [
        "API handshake",
        "account is paper",
        "port is a paper port",
        "net liquidation",
        "positions",
        "no probe leftovers",
        "clock skew against IB server time",
        "probe instrument",
    ]
    if results[-1].blocks:
        return results + [
            failed(n, "not checked: the Gateway is not reachable", "fix the Gateway connection first")
            for n in skipped
        ]
    ib = IB()
    try:
        results.append(await connect(ib, config))
        if results[-1].blocks:
            return results + [
                failed(n, "not checked: no API session", "fix the API handshake first") for n in skipped[1:]
            ]
        results += check_paper(ib, config)
        if hours is not None:
            try:
                await load_contract_hours(ib, hours, config.probes, gateway.request_timeout)
            except TimeoutError:
                logger.warning("no contract hours within {:g} s: the NYSE calendar decides", gateway.request_timeout)
        account = the_account(gateway.account, ib.managedAccounts())
        steps: list[tuple[str, Callable[[], Awaitable[CheckResult | list[CheckResult]]]]] = [
            ("net liquidation", lambda: check_net_liquidation(ib, config, account)),
            ("positions and open orders", lambda: check_positions_orders(ib, config)),
            ("clock skew against IB server time", lambda: check_clock(ib, config)),
            ("probe instrument", lambda: check_instrument(ib, config, today)),
        ]
        for step_name, step in steps:
            try:
                outcome = await step()
            except TimeoutError:
                outcome = failed(
                    step_name,
                    f"the Gateway did not answer within {gateway.request_timeout:g} s",
                    "check the Gateway is responsive; raise gateway.request_timeout if it is slow",
                )
            results += outcome if isinstance(outcome, list) else [outcome]
    finally:
        ib.disconnect()
    return results
