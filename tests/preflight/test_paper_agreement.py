"""Preflight passes exactly what the order guard accepts: its paper lines over a table of account
lists, ports, ``gateway.paper`` and configured accounts, against the guard's own ``paper_verdict``."""

from __future__ import annotations

import itertools

import pytest

from gatewatch.checks.paper import ACCOUNT_ITEM, PORT_ITEM, judge_paper
from gatewatch.config import GatewayConfig
from probes.active.guard import paper_verdict

ACCOUNT_LISTS = [[], [""], ["DU111"], ["U111"], ["DU111", "DU333"], ["DU111", "U999"], ["U999", "DU111"],
                 ["DF222", "DU111"], ["du111"]]  # fmt: skip
PORTS = [4001, 4002, 7496, 7497, 14002]
CONFIGURED = [None, "DU111", "DU999", "U999"]


@pytest.mark.parametrize(
    ("accounts", "port", "paper", "configured"),
    list(itertools.product(ACCOUNT_LISTS, PORTS, [True, False], CONFIGURED)),
)
def test_preflight_passes_exactly_what_the_guard_accepts(
    accounts: list[str], port: int, paper: bool, configured: str | None
) -> None:
    gateway = GatewayConfig(paper=paper, paper_ports=[4002, 7497], account=configured)
    results = judge_paper(gateway, port, accounts)
    verdict = paper_verdict(
        paper=paper, port=port, paper_ports=[4002, 7497], managed_accounts=accounts, configured_account=configured
    )
    assert [r.name for r in results] == [ACCOUNT_ITEM, PORT_ITEM]
    assert (not any(r.blocks for r in results)) == verdict.ok
    if not verdict.ok:  # the guard's own reason is among what preflight prints
        assert any(verdict.message in r.detail for r in results if r.blocks)


def test_a_live_account_beside_the_paper_one_blocks_the_session() -> None:
    """The old preflight passed this login (first account paper); the guard refuses every order on it."""
    results = judge_paper(GatewayConfig(account="DU111"), 4002, ["DU111", "U999"])
    account_line = results[0]
    assert account_line.blocks and "U999" in account_line.detail and "LIVE" in account_line.detail
    assert "every account the login manages must be paper" in account_line.fix


def test_every_problem_is_named_in_one_run() -> None:
    results = judge_paper(GatewayConfig(paper=False), 4001, ["U111"])
    account_line, port_line = results
    assert "gateway.paper is false" in account_line.detail and "U111" in account_line.detail
    assert port_line.blocks and "4001" in port_line.detail and "4001 and 7496" in port_line.fix
