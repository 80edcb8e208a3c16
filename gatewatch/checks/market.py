"""Preflight's market-hours item: open now, and for the whole session, by the one market-hours rule.

The rule is the exporter's (:class:`gatewatch.trading_hours.MarketHours`): the Gateway's own
contract hours for the first watched symbol, the NYSE calendar where they do not reach. Preflight
used to read the calendar alone, so against a Gateway (or the simulator) trading round the clock it
blocked at night while the exporter reported the market open; the contract hours won because they
are the Gateway's word on when quotes must be fresh and orders fill, holidays and early closes
included. Without contract hours (Gateway unreachable, or it publishes none) the calendar decides,
and the line says so.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from gatewatch.checks import CheckResult, failed, passed
from gatewatch.config import GatewatchConfig
from gatewatch.ib.hours import hours_symbol
from gatewatch.market_calendar import EASTERN
from gatewatch.trading_hours import MarketHours

NAME = "market open for the session"


def hours_source(config: GatewatchConfig, hours: MarketHours, now: datetime) -> str:
    """Which side of the rule decided, for the report."""
    if hours.source(now) == "contract":
        return f"{hours_symbol(config.probes)} contract hours from the Gateway"
    if hours.known:
        return f"NYSE calendar: the {hours_symbol(config.probes)} contract hours do not cover today"
    return "NYSE calendar: no contract hours from the Gateway"


def check_market(config: GatewatchConfig, now: datetime, hours: MarketHours) -> CheckResult:
    """The market must be open now and stay open for the whole session (holidays, early closes)."""
    duration = timedelta(seconds=config.session.required_duration)
    local = now.astimezone(EASTERN).strftime("%a %Y-%m-%d %H:%M %Z")
    source = hours_source(config, hours, now)
    close = hours.session_close(now)
    if close is not None and hours.open_through(now, duration):
        ends = close.astimezone(EASTERN)
        detail = f"open ({local}, {source}); closes {ends:%a %Y-%m-%d %H:%M %Z}, after the {duration} session"
        return passed(NAME, detail)
    if close is not None:
        ends = close.astimezone(EASTERN)
        detail = f"open ({local}, {source}) but closes {ends:%H:%M %Z}, before a {duration} session ends"
    else:
        detail = (
            f"closed ({local}, {source}); next open {hours.next_open(now).astimezone(EASTERN):%a %Y-%m-%d %H:%M %Z}"
        )
    fix = f"start the session when at least {duration} of regular trading remains"
    if not config.preflight.require_market_open:
        return CheckResult(NAME, "warn", detail + " (preflight.require_market_open is false)", fix, False)
    return failed(NAME, detail, fix)
