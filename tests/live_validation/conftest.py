"""Live validation suite: a simulator by default, a real PAPER Gateway with ``--gateway HOST:PORT``.

Configuration: the operator's file (``--gateway-config``, default config/gatewatch.yaml) is what
the suite runs with, so stream duration, staleness limit, instrument, symbols, timeouts and client
ids are the ones the exporter and the probes use. ``--gateway`` overrides only the host and port.
Against the fixture-started simulator the same file is loaded and then overridden explicitly (its
address, short timeouts and durations, a throw-away journal) so the suite stays quick and hermetic.

Beside a live session: the suite never shares anything with the exporter's scheduled probes. Its
order connection and its passive connection have their own client ids (``Client.LIVE_SUITE_PROBES``
and ``Client.LIVE_SUITE`` in gatewatch.ib.connect: no 326 either way), its orders carry their own
tag (``<order_ref_prefix>-live``, so neither side's clean-up ever cancels or closes the other's)
and it keeps its own journal next to the probes' one. So it can run during a session.

Paper check, once: before anything else the session refuses to run at all (``pytest.exit``, nothing
sent) unless the configuration says paper, the port is a configured paper port and, once
connected, every managed account id starts with D: the same PaperGuard the probes use. At the end
the session flattens probe orders and positions only (orderRef prefix + journal).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from exporter.collectors import PassiveFamilies
from exporter.metrics import Metrics
from gatewatch.config import ConfigError, GatewatchConfig, load_config, split_host_port
from gatewatch.ib.connect import Client, client_id, connect_bound
from probes.active.context import ProbeContext
from probes.active.guard import OrderRefused
from probes.active.runner import ActiveSession
from probes.flatten import flatten
from probes.gateway import CurrentTimeRequester, GatewaySession
from probes.passive.base import PassiveContext
from probes.passive.quotes import QuotesProbe
from simulator import running_simulator
from simulator.testing import SimHandle

DEFAULT_GATEWAY_CONFIG = Path(__file__).resolve().parents[2] / "config" / "gatewatch.yaml"
LIVE_TAG_SUFFIX = "-live"
LIVE_JOURNAL_NAME = "live-validation-journal.sqlite"
REFUSED = 2


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--gateway", default=None, metavar="HOST:PORT",
                     help="run against a real PAPER IB Gateway instead of the simulator")
    parser.addoption("--sim-control", default=None, metavar="URL",
                     help="with --gateway pointing at a simulator someone else runs: its control API, used "
                          "only for the slow-request fault (a latency every client tolerates)")
    parser.addoption("--gateway-config", default=str(DEFAULT_GATEWAY_CONFIG), metavar="FILE",
                     help="gatewatch configuration to validate with (default: config/gatewatch.yaml); "
                          "--gateway overrides only its host and port")


@dataclass
class Target:
    """What the suite talks to; ``sim`` is None on a real Gateway (fault steps are skipped)."""

    config: GatewatchConfig
    sim: SimHandle | None
    account: str
    """The paper account the session check confirmed."""
    latency: Callable[[float, float], None] | None = None
    """Make the Gateway answer ``ms`` late for ``seconds`` (a simulator's latency fault), if possible."""


def control_latency(url: str) -> Callable[[float, float], None]:
    """A latency fault through a simulator's control API (POST /faults)."""

    def inject(ms: float, seconds: float) -> None:
        body = json.dumps({"fault": "latency", "ms": ms, "for": f"{seconds:g}s"}).encode()
        request = urllib.request.Request(f"{url.rstrip('/')}/faults", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=5).read()

    return inject


def with_gateway_address(config: GatewatchConfig, address: str) -> GatewatchConfig:
    """The operator's configuration with only the Gateway's host and port replaced."""
    config.gateway.host, config.gateway.port = split_host_port(address, field="--gateway")
    return config


def as_live_suite(config: GatewatchConfig, journal: Path | None = None) -> GatewatchConfig:
    """The suite's own client id, order tag and journal, so it runs beside the exporter's probes."""
    config.gateway.probe_client_id = client_id(config.gateway, Client.LIVE_SUITE_PROBES)
    config.active.order_ref_prefix = config.active.order_ref_prefix[:10] + LIVE_TAG_SUFFIX
    config.active.journal_path = str(journal or Path(config.active.journal_path).with_name(LIVE_JOURNAL_NAME))
    return config


def for_simulator(config: GatewatchConfig, sim: SimHandle, journal: Path) -> GatewatchConfig:
    """The operator's configuration pointed at the simulator, with short waits set explicitly."""
    gw = config.gateway
    gw.host, gw.port, gw.paper, gw.paper_ports, gw.account = "127.0.0.1", sim.port, True, [sim.port], None
    gw.connect_timeout = gw.request_timeout = 5
    gw.reconnect_initial, gw.reconnect_max = 0.2, 1.0
    active = config.active
    active.journal_path = str(journal)
    active.fill_timeout = active.cancel_timeout = 5
    active.close_retry_wait = 0.3
    active.stream_test_duration = 3
    config.probes.quote_stale_after = 2  # the simulator ticks at 4 Hz; the freeze step then takes seconds
    return config


def simulator_symbols(config: GatewatchConfig) -> list[str]:
    """Every symbol the configuration asks for, in order."""
    wanted = [*config.probes.symbols, config.active.instrument.symbol, config.probes.historical.symbol]
    return list(dict.fromkeys(wanted))


def config_refusal(config: GatewatchConfig) -> str | None:
    """What the configuration alone rules out, checked before any connection is opened."""
    gw = config.gateway
    if not gw.paper:
        return "gateway.paper is false: live validation runs on a paper Gateway only"
    if gw.port not in gw.paper_ports:
        return (f"port {gw.port} is not in gateway.paper_ports {gw.paper_ports} "
                "(IB Gateway paper 4002 / live 4001, TWS paper 7497 / live 7496)")
    return None


async def confirm_paper(config: GatewatchConfig) -> str:
    """Connect on the probes' client id and run the probes' own paper check; the paper account."""
    async with ActiveSession(config) as active:
        return active.guard.check_paper()


def checked_paper_account(config: GatewatchConfig) -> str:
    """The paper account, or the whole session refused with the reason (nothing is sent)."""
    where = f"{config.gateway.host}:{config.gateway.port}"
    refusal = config_refusal(config)
    if refusal is None:
        try:
            return asyncio.run(confirm_paper(config))
        except OrderRefused as exc:
            refusal = str(exc)
        except (OSError, TimeoutError) as exc:
            refusal = f"cannot connect to the Gateway at {where}: {exc or type(exc).__name__}"
    pytest.exit(f"live validation refused ({where}): {refusal}", returncode=REFUSED)


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    address = request.config.getoption("--gateway")
    try:
        config = load_config(request.config.getoption("--gateway-config"), environ={})
        if address:
            config = as_live_suite(with_gateway_address(config, address))
    except ConfigError as exc:
        pytest.exit(f"live validation: {exc}", returncode=REFUSED)
    if address:
        control = request.config.getoption("--sim-control")
        yield Target(config, None, checked_paper_account(config), control_latency(control) if control else None)
        return
    journal = Path(tempfile.mkdtemp(prefix="gatewatch-live-")) / "journal.sqlite"
    with running_simulator(port=0, control_port=0, account="DU1234567", seed=7, symbols=simulator_symbols(config),
                           tick_hz=4.0, market="open") as sim:
        config = as_live_suite(for_simulator(config, sim, journal), journal)
        yield Target(config, sim, checked_paper_account(config),
                     lambda ms, seconds: sim.inject({"fault": "latency", "ms": ms, "for": f"{seconds:g}s"}) and None)


@pytest_asyncio.fixture
async def session(target: Target) -> AsyncIterator[ActiveSession]:
    """A connected probe session (the paper check ran once for the whole session; the guard still
    checks before every order)."""
    async with ActiveSession(target.config, backoff_base=0.1 if target.sim else 2.0) as active:
        yield active
        await active.orders.cleanup(probe="live_validation")


@pytest_asyncio.fixture
async def ctx(session: ActiveSession) -> ProbeContext:
    return await session.context()


@dataclass
class Passive:
    """The exporter's own connection and quotes probe, on the suite's passive client id."""

    session: GatewaySession
    metrics: Metrics
    quotes: QuotesProbe


@pytest_asyncio.fixture
async def passive(target: Target) -> AsyncIterator[Passive]:
    """A running GatewaySession (reconnect loop included) with the QuotesProbe subscribed to it."""
    gateway = target.config.gateway.model_copy(
        update={"client_id": client_id(target.config.gateway, Client.LIVE_SUITE)})
    session = GatewaySession(gateway)
    metrics = Metrics()
    requester = CurrentTimeRequester(session, gateway.request_timeout)
    quotes = QuotesProbe(PassiveContext(session, target.config, requester, metrics))
    metrics.add_source(PassiveFamilies(session, {quotes.name: quotes}, ("live-validation", session.address)))
    runner = asyncio.create_task(session.run(), name="live-validation-gateway-session")
    try:
        await asyncio.wait_for(session.first_attempt_done.wait(), connect_bound(gateway) + 1)
        assert session.connected, f"passive connection failed: {session.last_error}"
        yield Passive(session, metrics, quotes)
    finally:
        runner.cancel()
        with contextlib.suppress(BaseException):
            await runner
        session.close()


@pytest.fixture(scope="session", autouse=True)
def flatten_probe_orders_at_end(target: Target) -> Iterator[None]:
    yield
    asyncio.run(flatten(target.config))  # probe orders/positions only, never --all
