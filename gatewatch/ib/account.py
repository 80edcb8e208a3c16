"""Which account is "the" account of a Gateway login.

A login can manage several accounts (advisor or linked logins). The exporter reports, the probes
trade and preflight checks the same one: ``gateway.account`` when the operator set it, otherwise
the first account the Gateway lists in ``managedAccounts``. Whether the configured account is
actually managed is a separate question each caller answers for its purpose (the paper rule
refuses, the exporter logs).
"""

from __future__ import annotations

from collections.abc import Sequence


def the_account(configured: str | None, managed: Sequence[str]) -> str:
    """``configured`` if set, else the first non-empty managed account, else ``""`` (not known yet)."""
    if configured:
        return configured
    return next((account for account in managed if account), "")


def is_managed(account: str, managed: Sequence[str]) -> bool:
    """True when the Gateway lists ``account`` among the accounts this login manages."""
    return bool(account) and account in managed
