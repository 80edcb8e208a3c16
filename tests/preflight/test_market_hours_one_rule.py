"""Market hours one way: the Gateway's contract hours, the NYSE calendar as fallback, for preflight,
the exporter (quotes probe and ``gatewatch_market_open``) and the active schedule.

"At night" is a chosen instant (03:00 New York, tomorrow) passed to the same judgement each user
makes, so the tests do not depend on when they run; the exporter's gauge is also read live.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from support.exporter import fast_config, running_exporter

from gatewatch.checks import CheckResult
from gatewatch.config import GatewatchConfig
from gatewatch.localstack.net import free_port
from gatewatch.market_calendar import EASTERN
from gatewatch.preflight import run_checks
from probes.active import schedule
from probes.state import ProbeState
from simulator import running_simulator

MARKET_ITEM = "market open for the session"


def tonight() -> datetime:
    """03:00 in New York tomorrow: the NYSE is always closed then; the simulator's hours cover it."""
    tomorrow = datetime.now(EASTERN).date() + timedelta(days=1)
    return datetime(tomorrow.year, tomorrow.month, tomorrow.day, 3, tzinfo=EASTERN).astimezone(UTC)


def preflight_config(port: int, tmp_path: Path) -> GatewatchConfig:
    return GatewatchConfig.model_validate(
        {
            "gateway": {"port": port, "paper_ports": [port], "connect_timeout": 5, "request_timeout": 5},
            "active": {"journal_path": str(tmp_path / "journal.sqlite")},
            "preflight": {"require_market_open": True, "prometheus_data_path": str(tmp_path)},
            "probes": {"symbols": ["SPY", "QQQ"]},
        }
    )


def market_line(config: GatewatchConfig, now: datetime) -> CheckResult:
    results = asyncio.run(run_checks(config, "test", now=now))
    assert [r.name for r in results][:2] == ["configuration valid", MARKET_ITEM]  # still listed second
    return results[1]


@pytest.fixture(params=["open", "calendar"])
def sim(request: pytest.FixtureRequest) -> Iterator[object]:
    with running_simulator(account="DU1234567", seed=1, symbols=["SPY", "QQQ"], market=request.param) as handle:
        yield handle


def test_preflight_agrees_with_the_exporter_at_night(sim: object, tmp_path: Path) -> None:
    """Open round the clock: both say open at 03:00 (preflight used to block); calendar mode: both closed."""
    port = sim.port  # type: ignore[attr-defined]
    market = sim.cfg.market  # type: ignore[attr-defined]
    night = tonight()

    async def exporter_view() -> tuple[bool, float]:
        async with running_exporter(fast_config(port)) as exporter:
            hours = exporter.app.quotes.market_hours
            deadline = time.monotonic() + 15
            while not hours.known:
                assert time.monotonic() < deadline, "the exporter never learnt the contract hours"
                await asyncio.sleep(0.1)
            live_open = hours.is_open(datetime.now(UTC))
            gauge = await exporter.wait_for(
                "gatewatch_market_open", lambda v: v == (1.0 if live_open else 0.0), exchange="NYSE"
            )
            return hours.is_open(night), gauge

    exporter_open_at_night, gauge_now = asyncio.run(exporter_view())
    line = market_line(preflight_config(port, tmp_path), night)
    assert exporter_open_at_night is (market == "open")
    assert (line.status == "pass") is exporter_open_at_night, line
    assert "SPY contract hours from the Gateway" in line.detail
    if market == "open":  # live: the exporter's gauge and preflight at this very moment
        live = market_line(preflight_config(port, tmp_path), datetime.now(UTC))
        assert gauge_now == 1.0 and live.status == "pass", live
    else:
        assert line.blocks and "closed" in line.detail


@pytest.mark.parametrize(
    ("when", "status"),
    [
        (datetime(2026, 12, 8, 11, tzinfo=EASTERN), "pass"),  # a Tuesday, regular hours
        (datetime(2026, 12, 8, 15, tzinfo=EASTERN), "fail"),  # open, but closes before 2 h are over
        (datetime(2026, 12, 8, 3, tzinfo=EASTERN), "fail"),  # night
        (datetime(2026, 12, 25, 11, tzinfo=EASTERN), "fail"),  # Christmas
    ],
)
def test_without_contract_hours_the_calendar_decides(tmp_path: Path, when: datetime, status: str) -> None:
    line = market_line(preflight_config(free_port(), tmp_path), when.astimezone(UTC))  # no Gateway there
    assert line.status == status, line
    assert "NYSE calendar: no contract hours from the Gateway" in line.detail


def test_schedule_looks_again_soon_while_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A first judgement made before the Gateway's hours are known must not hold probes back for an
    ``active.interval`` (600 s here): the schedule judges again within the recheck period."""
    monkeypatch.setattr(schedule, "MARKET_RECHECK_SECONDS", 0.2)
    config = GatewatchConfig.model_validate({"active": {"interval": 600, "market_hours_only": True}})
    calls: list[float] = []

    async def main() -> None:
        stop = asyncio.Event()

        def is_open(_: datetime) -> bool:
            calls.append(time.monotonic())
            if len(calls) >= 3:
                stop.set()
            return False

        await asyncio.wait_for(schedule.run_schedule(config, ProbeState(), stop, is_open=is_open), 5)

    asyncio.run(main())
    assert len(calls) == 3 and calls[-1] - calls[0] < 2


def test_calendar_fallback_dates_are_real_trading_days() -> None:
    from gatewatch.market_calendar import NYSE

    assert NYSE.session(date(2026, 12, 8)) is not None and NYSE.session(date(2026, 12, 25)) is None


def test_schedule_judges_once_the_gateways_hours_are_known() -> None:
    """The exporter's schedule starts as the Gateway connects: its first judgement waits for the
    contract hours, so a Gateway open at night is never first reported closed by the calendar."""
    from gatewatch.trading_hours import MarketHours

    config = GatewatchConfig.model_validate({"active": {"interval": 600, "market_hours_only": True}})
    hours = MarketHours()
    night = tonight()
    judged: list[bool] = []

    async def main() -> None:
        active = schedule.exporter_task(hours)
        active.is_open = lambda _now: judged.append(hours.is_open(night)) or False  # judge "tonight"
        task = asyncio.create_task(active(config, ProbeState()))
        await asyncio.sleep(0.5)
        assert judged == []  # still waiting for the Gateway's hours
        day = night.astimezone(EASTERN).strftime("%Y%m%d")
        hours.update(f"{day}:0000-{day}:2359", "US/Eastern")  # what a round-the-clock Gateway publishes
        deadline = time.monotonic() + 3
        while not judged:
            assert time.monotonic() < deadline, "the schedule never judged after the hours arrived"
            await asyncio.sleep(0.05)
        await active.unwind()
        await asyncio.wait_for(task, 2)

    asyncio.run(main())
    assert judged[0] is True
