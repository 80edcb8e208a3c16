"""Contract hours agree with the simulator's market mode: clients take liquidHours as the authority."""

from __future__ import annotations

from datetime import date

from ib_async import IB, Stock

from gatewatch.market_calendar import NYSE
from simulator import running_simulator
from simulator.contracts import trading_hours


async def _liquid_hours(market: str) -> tuple[str, list[str]]:
    with running_simulator(port=0, control_port=0, market=market) as sim:
        ib = IB()
        await ib.connectAsync("127.0.0.1", sim.port, clientId=5, timeout=5)
        try:
            details = (await ib.reqContractDetailsAsync(Stock("SPY", "SMART", "USD")))[0]
        finally:
            ib.disconnect()
    return details.timeZoneId, details.liquidHours.split(";")


async def test_open_market_reports_round_the_clock_sessions() -> None:
    zone, sessions = await _liquid_hours("open")
    assert zone == "US/Eastern"
    assert len(sessions) == 7
    assert all("CLOSED" not in part and part.endswith(":0000") for part in sessions)


async def test_calendar_market_reports_nyse_sessions() -> None:
    _, sessions = await _liquid_hours("calendar")
    assert len(sessions) == 7
    assert sessions == trading_hours(date.fromisoformat(sessions[0][:8][:4] + "-" + sessions[0][4:6] + "-"
                                                        + sessions[0][6:8]), rth=True, calendar=NYSE).split(";")
    # Thanksgiving week 2026 as a fixed reference: the holiday CLOSED, the day after closes at 13:00.
    week = trading_hours(date(2026, 11, 25), rth=True, calendar=NYSE).split(";")
    assert "20261126:CLOSED" in week and "20261127:0930-20261127:1300" in week
    assert "20261125:0930-20261125:1600" in week
