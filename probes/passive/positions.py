"""How gatewatch names a position, so the Gateway, the ledger and the bot's file can be compared.

Stocks are keyed by symbol (``SPY``); options by ``SYMBOL YYYYMMDD RIGHT STRIKE`` (``SPY 20261127 C
600``, strike without trailing zeros); anything else by ``SYMBOL SECTYPE CONID``.
"""

from __future__ import annotations

from ib_async import Contract


def position_key(contract: Contract) -> str:
    if contract.secType == "STK":
        return contract.symbol
    if contract.secType in ("OPT", "FOP"):
        return (f"{contract.symbol} {contract.lastTradeDateOrContractMonth} {contract.right} "
                f"{contract.strike:g}")
    return f"{contract.symbol} {contract.secType} {contract.conId}"
