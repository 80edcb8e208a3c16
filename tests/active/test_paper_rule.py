"""The one paper rule (probes.active.guard.paper_verdict): a table over account lists, ports and config.

Preflight and the proxy import the same function, so this table is what all three accept.
"""

from __future__ import annotations

import pytest

from probes.active.guard import paper_verdict

PAPER_PORTS = (4002, 7497)

CASES = [
    # paper, port, managed accounts, configured account -> reason ("" = orders may go), account
    (True, 4002, ["DU111"], None, "", "DU111"),
    (True, 7497, ["DU111"], "DU111", "", "DU111"),
    (True, 4002, ["DF222", "DU111"], "DU111", "", "DU111"),  # advisor paper login: all D
    (True, 4002, ["DU111", "DU333"], None, "", "DU111"),  # several paper accounts: the first
    (True, 4002, ["U111"], None, "account_not_paper", "U111"),
    (True, 4002, ["DU111", "U999"], "DU111", "account_not_paper", "DU111"),  # one live id taints all
    (True, 4002, ["U999", "DU111"], None, "account_not_paper", "U999"),
    (True, 4002, ["du111"], None, "account_not_paper", "du111"),  # ids are case-sensitive
    (True, 4002, [], None, "account_unknown", ""),  # not logged in / list not received
    (True, 4002, [""], None, "account_unknown", ""),
    (True, 4002, ["DU111"], "DU999", "account_unknown", "DU999"),  # configured account not managed
    (True, 4001, ["DU111"], None, "port_not_paper", "DU111"),  # live Gateway port
    (True, 7496, ["DU111"], None, "port_not_paper", "DU111"),  # live TWS port
    (True, 4001, ["U111"], None, "port_not_paper", "U111"),  # port judged before the account
    (False, 4002, ["DU111"], None, "paper_false", "DU111"),  # the operator's statement first
    (False, 4001, ["U111"], None, "paper_false", "U111"),
]


@pytest.mark.parametrize(("paper", "port", "accounts", "configured", "reason", "account"), CASES)
def test_paper_rule_table(paper, port, accounts, configured, reason, account):
    verdict = paper_verdict(
        paper=paper, port=port, paper_ports=PAPER_PORTS, managed_accounts=accounts, configured_account=configured
    )
    assert (verdict.reason, verdict.account) == (reason, account)
    assert verdict.ok == (reason == "")
    if reason == "account_not_paper":
        assert all(a in verdict.message for a in accounts if not a.startswith("D"))


def test_custom_paper_port_is_paper_only_when_listed():
    assert paper_verdict(paper=True, port=14002, paper_ports=[14002], managed_accounts=["DU1"]).ok
    assert not paper_verdict(paper=True, port=14002, paper_ports=PAPER_PORTS, managed_accounts=["DU1"]).ok
