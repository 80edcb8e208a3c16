"""Market hours as the Gateway publishes them: whose contract decides, and fetching them.

The one rule for "is the market open" is :class:`gatewatch.trading_hours.MarketHours`: the
contract's own liquid hours from the Gateway, the NYSE calendar where they do not reach. The
contract is the first watched symbol (``probes.symbols[0]``): the exporter's quotes probe reads its
hours from the contract details it fetches anyway, preflight fetches the same contract's, so both
(and the active schedule and the gates, through the exporter's ``gatewatch_market_open``) agree.
"""

from __future__ import annotations

import asyncio

from ib_async import IB, Stock

from gatewatch.config import ProbesConfig
from gatewatch.trading_hours import MarketHours


def hours_symbol(probes: ProbesConfig) -> str:
    """The symbol whose contract hours say when the market is open."""
    return probes.symbols[0]


def hours_contract(symbol: str) -> Stock:
    """The contract asked for (as the quotes probe asks for it): US stock routed SMART."""
    return Stock(symbol, "SMART", "USD")


async def load_contract_hours(ib: IB, hours: MarketHours, probes: ProbesConfig, timeout: float) -> bool:
    """Adopt the Gateway's hours for :func:`hours_symbol` into ``hours``; False if it gave none.

    Raises TimeoutError when the Gateway does not answer within ``timeout``.
    """
    details = await asyncio.wait_for(ib.reqContractDetailsAsync(hours_contract(hours_symbol(probes))), timeout)
    if len(details) != 1:
        return False
    hours.update(details[0].liquidHours, details[0].timeZoneId)
    return hours.known
