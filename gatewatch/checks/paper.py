"""Preflight's paper items, judged by the order guard's own rule (:func:`paper_verdict`).

Why not a check of its own: preflight used to accept a login whose first account was paper while
another managed account was live, which the guard refuses (one live id makes the Gateway live),
so a session could start whose order probes would then all be refused. Preflight now passes
exactly what the guard accepts: its paper lines all pass if and only if ``paper_verdict`` says ok.

The rule stops at the first failing fact (``gateway.paper``, then the port, then the accounts).
To tell the operator every problem in one run, preflight asks the same rule again with each
failure already reported set aside; it never judges a fact itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from gatewatch.checks import CheckResult, failed, passed
from gatewatch.config import GatewayConfig
from gatewatch.ib.account import the_account
from probes.active.guard import PaperVerdict, paper_verdict

ACCOUNT_ITEM = "account is paper"
PORT_ITEM = "port is a paper port"

FIXES = {
    "paper_false": "set gateway.paper: true once you have confirmed the Gateway is the paper one",
    "port_not_paper": "connect to the paper port (IB Gateway 4002, TWS 7497; live ones are 4001 and "
    "7496) or list this port in gateway.paper_ports if it maps to a paper Gateway",
    "account_unknown": "log the Gateway into the paper user, or correct gateway.account",
    "account_not_paper": "log IB Gateway into the PAPER trading user (TRADING_MODE=paper with IBC); paper "
    "account ids start with D, e.g. DU1234567, and every account the login manages must be paper",
}


def paper_failures(gateway: GatewayConfig, port: int, accounts: Sequence[str]) -> list[PaperVerdict]:
    """Every refusal the guard's rule gives for these facts: the first is the guard's own answer."""
    paper, paper_ports = gateway.paper, list(gateway.paper_ports)
    refusals: list[PaperVerdict] = []
    while True:
        verdict = paper_verdict(
            paper=paper,
            port=port,
            paper_ports=paper_ports,
            managed_accounts=accounts,
            configured_account=gateway.account,
        )
        if verdict.ok:
            return refusals
        refusals.append(verdict)
        if verdict.reason == "paper_false":
            paper = True
        elif verdict.reason == "port_not_paper":
            paper_ports = [port]
        else:
            return refusals


def judge_paper(gateway: GatewayConfig, port: int, accounts: Sequence[str]) -> list[CheckResult]:
    """The two checklist lines: the accounts (with ``gateway.paper``) and the connection's port."""
    refusals = paper_failures(gateway, port, accounts)
    by_item: dict[str, list[PaperVerdict]] = {ACCOUNT_ITEM: [], PORT_ITEM: []}
    for verdict in refusals:
        by_item[PORT_ITEM if verdict.reason == "port_not_paper" else ACCOUNT_ITEM].append(verdict)
    results = []
    account = the_account(gateway.account, accounts)
    for item, success in (
        (ACCOUNT_ITEM, f"account {account} (paper id; every managed account paper); gateway.paper is true"),
        (PORT_ITEM, f"port {port} is in gateway.paper_ports {gateway.paper_ports}"),
    ):
        found = by_item[item]
        if not found:
            results.append(passed(item, success))
            continue
        results.append(
            failed(
                item,
                "; ".join(v.message for v in found),
                "; ".join(FIXES.get(v.reason, "") for v in found),
            )
        )
    return results
