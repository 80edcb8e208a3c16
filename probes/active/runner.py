"""Run the active probes once on their own connection: recover, probe, clean up.

Order of work, and why: connect with ``gateway.probe_client_id`` (the Gateway replays this
client's open orders and executions, which is what recovery needs); refuse everything unless the
paper checks pass; recover what a crashed run left (cancel our open orders, close our positions);
run each probe time-boxed, cleaning up after a failure; finally flatten again and disconnect. A
Gateway fault fails probes; it never raises out of :func:`run_probes`.

Stopping (SIGTERM/SIGINT to ``probe run`` or the exporter sets the run's ``stop`` event): the probe
in flight is cancelled at once, then the clean-up cancels its orders and closes what the probes
hold, within :func:`unwind_bound` seconds. A stopped probe is not reported (it neither passed nor
failed). Cancelling the run's task instead (a second signal) skips the clean-up: the next start's
recovery does it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ib_async import IB
from loguru import logger

from gatewatch.config import GatewatchConfig
from gatewatch.ib.connect import Client, connect
from probes.active import order_probes, request_probes
from probes.active.context import ProbeContext
from probes.active.guard import OrderRefused, PaperGuard
from probes.active.instrument import resolve_instrument
from probes.active.journal import Journal, JournalError
from probes.active.orders import NOT_DONE, ProbeFailure, ProbeOrders
from probes.active.pacing import GatewayBudget, PacingGovernor, gateway_budget
from probes.active.stopping import cancel_on_stop
from probes.state import ProbeState

ProbeFn = Callable[[ProbeContext], Awaitable[str]]

PROBES: dict[str, ProbeFn] = {
    "fill": order_probes.probe_fill,
    "position": order_probes.probe_position,
    "cancel": order_probes.probe_cancel,
    "close": order_probes.probe_close,
    "cancel_race": order_probes.probe_cancel_race,
    "duplicate": order_probes.probe_duplicate,
    "reject": order_probes.probe_reject,
    "close_retry": order_probes.probe_close_retry,
    "timeout": request_probes.probe_timeout,
    "rate": request_probes.probe_rate,
    "error_recovery": request_probes.probe_error_recovery,
}


@dataclass
class ProbeResult:
    """One probe's outcome."""

    name: str
    ok: bool
    duration: float
    detail: str


@dataclass
class RunReport:
    """A whole run: results in order, plus what recovery and clean-up did."""

    run_id: str
    results: list[ProbeResult] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)
    fill_latencies: list[float] = field(default_factory=list)
    bad_file: str = ""
    """Set when a file (the journal) made the run impossible: ``probe run`` then exits 2."""
    stopped: str = ""
    """The probe in flight when a stop was requested ("-" between probes); empty if not stopped."""

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.ok for r in self.results)


def new_run_id() -> str:
    """Short, unique enough per run, and sortable by time."""
    return f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(2)}"


def probe_timeout(config: GatewatchConfig) -> float:
    """Time box per probe: a few fill/cancel waits plus the close-retry walk."""
    a = config.active
    return 3 * a.fill_timeout + a.cancel_timeout + (a.close_retry_attempts + 2) * a.close_retry_wait + 10


def unwind_bound(config: GatewatchConfig) -> float:
    """Longest a stop may take to unwind a run: cancel confirmations, a positions read, one full close.

    A close lot may wait ``close_retry_wait`` per re-price and then ``fill_timeout`` after the
    escalation; cancels and the positions read wait ``cancel_timeout`` each. compose's
    ``stop_grace_period`` for the exporter must cover this with the shipped settings (tested).
    """
    a = config.active
    return 2 * a.cancel_timeout + (a.close_retry_attempts + 1) * a.close_retry_wait + a.fill_timeout + 5


def exporter_stop_grace(config: GatewatchConfig) -> float:
    """How long a supervisor (``gatewatch stack``, ``gatewatch rehearse``) waits after SIGTERM before it
    SIGKILLs an exporter: the unwind and a margin for the process to exit (compose's
    ``stop_grace_period`` is checked against the same bound)."""
    return unwind_bound(config) + 5


CLIENT_ID_IN_USE = 326


class ClientIdInUse(ConnectionError):
    """The Gateway refused the probes' client id (326): another probe run holds it."""


async def connect_probe_client(ib: IB, config: GatewatchConfig) -> None:
    """Connect on the probes' own client id, with every request time-boxed.

    A second probe run (``probe run``, ``flatten``, or the exporter's schedule) on the same Gateway
    gets error 326 and a closed socket; ib_async then reports only a timeout or a lost connection,
    so the 326 is caught here and named, with what to do.
    """
    refused: list[str] = []

    def on_error(req_id: int, code: int, message: str, contract: object = None) -> None:
        if code == CLIENT_ID_IN_USE:
            refused.append(message)

    ib.errorEvent += on_error
    try:
        await connect(ib, config.gateway, Client.PROBES)
    except (TimeoutError, ConnectionError, OSError) as exc:
        if not refused:
            raise
        raise ClientIdInUse(
            f"client id {config.gateway.probe_client_id} is already in use at the Gateway (error 326: "
            f"{refused[0]}): another `gatewatch probe run`, `gatewatch flatten` or the exporter's "
            "scheduled active probes are running; only one probe run at a time, wait for it to finish"
        ) from exc
    finally:
        ib.errorEvent -= on_error


def shared_budget(config: GatewatchConfig) -> GatewayBudget:
    """The Gateway's request budget shared with gatewatch's other clients in this process."""
    try:
        return gateway_budget(config.gateway.host, config.gateway.port)
    except RuntimeError:  # built outside an event loop: nothing else can share it anyway
        return GatewayBudget()


class ActiveSession:
    """A connected probe session: guard, journal, helpers. Use as an async context manager."""

    def __init__(
        self,
        config: GatewatchConfig,
        *,
        metrics: ProbeState | None = None,
        backoff_base: float = 2.0,
        run_id: str | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.run_id = run_id or new_run_id()
        self.ib = IB()
        self.journal = Journal(config.active.journal_path)
        self.guard = PaperGuard(self.ib, config, self.journal, run_id=self.run_id, metrics=metrics)
        budget = shared_budget(config)
        self.governor = PacingGovernor(self.ib, backoff_base=backoff_base, metrics=metrics, pacer=budget.pacer,
                                       historical=budget.historical)
        self.orders = ProbeOrders(self.ib, self.guard, self.journal, config.active, self.governor, metrics)

    async def __aenter__(self) -> ActiveSession:
        try:
            await connect_probe_client(self.ib, self.config)
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self.orders.detach()
        self.governor.close()
        if self.ib.isConnected():
            self.ib.disconnect()
        self.update_gauges()
        self.journal.close()

    def update_gauges(self) -> None:
        if self.metrics:
            self.metrics.open_orders = len(self.journal.open_orders())
            self.metrics.positions = len(self.journal.net_positions())

    async def recover(self) -> list[str]:
        """Paper check, then cancel/close what earlier (crashed) runs left behind.

        Raises ProbeFailure (naming each) when something could not be closed: probes must not
        add to a position recovery could not take off.
        """
        self.guard.check_paper()
        done = await self.orders.cleanup(probe="recovery")
        left = [line for line in done if line.startswith(NOT_DONE)]
        if left:
            raise ProbeFailure("recovery incomplete: " + "; ".join(left))
        return done

    async def context(self) -> ProbeContext:
        instrument = await resolve_instrument(self.ib, self.config.active, self.orders)
        return ProbeContext(
            self.ib,
            self.config,
            self.guard,
            self.orders,
            self.journal,
            self.governor,
            instrument,
            self.metrics,
        )


async def run_probes(
    config: GatewatchConfig,
    *,
    only: list[str] | None = None,
    metrics: ProbeState | None = None,
    backoff_base: float = 2.0,
    on_result: Callable[[ProbeResult], None] | None = None,
    stop: asyncio.Event | None = None,
) -> RunReport:
    """Run the chosen probes once; every failure is reported, nothing raises.

    A set ``stop`` cancels the probe in flight and skips the rest (neither is reported); clean-up
    still runs, bounded by :func:`unwind_bound`.
    """
    names = [n for n in PROBES if only is None or n in only]
    report = RunReport(run_id=new_run_id())

    def fail_all(reason: str) -> RunReport:
        for name in names:
            _record(report, ProbeResult(name, False, 0.0, reason), on_result)
        return report

    try:
        session = ActiveSession(config, metrics=metrics, backoff_base=backoff_base, run_id=report.run_id)
    except JournalError as exc:
        logger.error("{}", exc)
        report.bad_file = str(exc)
        return fail_all(str(exc))
    except Exception as exc:
        return fail_all(f"cannot open the probe journal: {exc}")
    try:
        await session.__aenter__()
    except ClientIdInUse as exc:
        return fail_all(str(exc))
    except Exception as exc:
        return fail_all(
            f"cannot connect to {config.gateway.host}:{config.gateway.port} "
            f"as client {config.gateway.probe_client_id}: {type(exc).__name__} {exc}"
        )
    try:
        try:
            report.recovered = await session.recover()
            ctx = await session.context()
        except OrderRefused as exc:
            return fail_all(f"refused ({exc.reason}): {exc}")
        except (ProbeFailure, TimeoutError, ConnectionError) as exc:
            return fail_all(f"{type(exc).__name__}: {exc}")
        for name in names:
            if stop is not None and stop.is_set():
                logger.info("active probe run {} stopping before {}", report.run_id, name)
                report.stopped = report.stopped or "-"
                break
            result = await _run_one(name, ctx, probe_timeout(config), stop)
            if result is None:
                logger.warning("active probe {} stopped: unwinding (cancel, close)", name)
                report.stopped = name
                break
            _record(report, result, on_result)
            if not result.ok and session.ib.isConnected():
                await _safe_cleanup(session, report)
        if session.ib.isConnected():
            bound = unwind_bound(config) if report.stopped else None
            await _safe_cleanup(session, report, bound)
        report.fill_latencies = list(_latencies(session))
    finally:
        await session.aclose()
    return report


async def _run_one(
    name: str, ctx: ProbeContext, timeout: float, stop: asyncio.Event | None = None
) -> ProbeResult | None:
    """Run one probe time-boxed; None when ``stop`` was set while it ran (the probe is cancelled)."""
    started = time.monotonic()
    probe = await cancel_on_stop(asyncio.wait_for(PROBES[name](ctx), timeout), stop)
    if probe is None:
        return None
    try:
        detail = await probe
        ok = True
    except asyncio.CancelledError:
        raise
    except OrderRefused as exc:
        ok, detail = False, f"refused ({exc.reason}): {exc}"
    except ProbeFailure as exc:
        ok, detail = False, str(exc)
    except TimeoutError:
        ok, detail = False, f"timed out after {timeout:g} s"
    except Exception as exc:
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    return ProbeResult(name, ok, time.monotonic() - started, detail)


async def _safe_cleanup(session: ActiveSession, report: RunReport, bound: float | None = None) -> None:
    """Clean up; with ``bound`` (a stop's unwind) give up after that many seconds."""
    try:
        report.cleaned += await asyncio.wait_for(session.orders.cleanup(), bound)
    except TimeoutError:
        logger.error("probe unwind not done within {:g} s: the next start's recovery finishes it", bound or 0)
    except Exception as exc:
        logger.error("probe cleanup failed, the next start will retry it: {}", exc)


def _latencies(session: ActiveSession) -> list[float]:
    return session.orders.marketable_latencies()


def _record(report: RunReport, result: ProbeResult, on_result: Callable[[ProbeResult], None] | None) -> None:
    report.results.append(result)
    level = "INFO" if result.ok else "WARNING"
    logger.log(
        level,
        "active probe {} {} in {:.2f} s: {}",
        result.name,
        "passed" if result.ok else "FAILED",
        result.duration,
        result.detail,
    )
    if on_result:
        on_result(result)
