"""The reconciliation probe: do the Gateway's positions match what we can account for?

Sources compared with the Gateway (the source of truth):

* ``ledger``: positions seeded from the Gateway when the probe first runs, then moved only by
  the executions ``reqExecutions`` reports (asked every run). A Gateway reports other clients'
  executions (the order probes', the bot's) only to the client whose id is its "Master API client
  ID": the exporter's ``gateway.client_id`` must be that id (docs/deployment_validation_checklist.md;
  the simulator comes configured so). Without it, every fill of another client reads as drift.
  Only executions of API clients move the ledger: gatewatch's probes (their ``orderRef`` tag) and
  the other API clients (the bot). A trade placed by hand in TWS reaches the Master API client as
  an execution of client id 0 (order id 0, no ``orderRef``): it is counted
  (``gatewatch_executions_total{origin="manual"}``), logged, and deliberately *not* absorbed, so
  it shows as drift. A position that changes without any execution the Gateway reports (a broker
  adjustment, a corporate action) shows as drift too: that is what the ledger is for. What stays
  undetectable is listed in docs/known_limitations.md.
* ``bot`` (optional, config probes.bot_positions_file): a JSON object the trading bot writes,
  mapping position keys to signed quantities, for example::

      {"SPY": 10, "SPY 20261127 C 600": -1}

  Keys are as in :func:`probes.passive.positions.position_key`: a stock by symbol, an option by
  ``SYMBOL YYYYMMDD RIGHT STRIKE``. Missing keys mean zero.

``gatewatch_position_drift{symbol,source}`` is Gateway minus source. A difference counts (gauge,
discrepancy counter) only when two consecutive checks find it: a fill in flight (its position update
and its execution report arriving on either side of one check) is not drift. Until then the gauge
reads 0. The probe measures; the ReconciliationDrift rule judges: the probe fails only when it
cannot compare (not connected, executions unanswered, the bot's file unreadable).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

from loguru import logger

from gatewatch.ib.connect import Client, client_id
from probes.outcome import ProbeFailure
from probes.passive.base import PassiveContext, Schedule
from probes.passive.positions import position_key


def read_bot_positions(path: str) -> dict[str, float]:
    """Parse the bot's positions file; raise ValueError with a clear reason if it is malformed."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object mapping position keys to quantities")
    result: dict[str, float] = {}
    for key, qty in data.items():
        if isinstance(qty, bool) or not isinstance(qty, int | float):
            raise ValueError(f"{path}: quantity of {key!r} must be a number")
        result[str(key)] = float(qty)
    return result


MANUAL_CLIENT_ID = 0
"""The client id of orders placed by hand in TWS (and of API client 0, which binds them)."""
ORIGINS = ("probe", "api", "manual")


def origin(client_id: int, order_ref: str, probe_ref_prefix: str, gatewatch_client_ids: frozenset[int]) -> str:
    """Who placed an execution's order: gatewatch's probes, another API client, or a hand in TWS."""
    if order_ref.startswith(probe_ref_prefix + ":") or client_id in gatewatch_client_ids:
        return "probe"
    if client_id == MANUAL_CLIENT_ID:
        return "manual"
    return "api"


def differences(gateway: dict[str, float], other: dict[str, float]) -> dict[str, float]:
    """Gateway minus other, for every key either side holds."""
    return {key: gateway.get(key, 0.0) - other.get(key, 0.0) for key in sorted(set(gateway) | set(other))}


class ReconciliationProbe:
    """Compares Gateway positions with the execution ledger and, optionally, the bot's file."""

    name = "reconciliation"

    def __init__(self, ctx: PassiveContext) -> None:
        self.session = ctx.session
        self.interval = ctx.config.probes.reconciliation_interval
        self.timeout = ctx.config.gateway.request_timeout * 3
        self.bot_positions_file = ctx.config.probes.bot_positions_file
        self.recorder = ctx.state.outcomes.recorder(self.name)
        self.ledger: dict[str, float] | None = None
        self.seen_executions: set[str] = set()
        self.positions: dict[tuple[str, str, str], float] = {}  # (key, sec_type, con_id) -> quantity
        self.drift: dict[tuple[str, str], float] = {}  # (key, source) -> confirmed Gateway minus source
        self.discrepancies: Counter[str] = Counter()  # by source
        self.executions: Counter[str] = Counter({o: 0 for o in ORIGINS})  # by origin, since start
        self.ref_prefix = ctx.config.active.order_ref_prefix
        self.gatewatch_ids = frozenset(client_id(ctx.config.gateway, c) for c in Client)
        self.pending: set[tuple[str, str]] = set()  # (source, key) that differed at the last check
        self._bot_error = ""

    def schedule(self) -> Schedule:
        return Schedule(self.interval, self.timeout)

    def gateway_positions(self) -> dict[str, float]:
        """Non-zero Gateway positions by key; every reported row kept for gatewatch_gateway_position."""
        result: dict[str, float] = {}
        rows: dict[tuple[str, str, str], float] = {}
        for pos in self.session.ib.positions(self.session.account):
            key = position_key(pos.contract)
            rows[(key, pos.contract.secType, str(pos.contract.conId))] = float(pos.position)
            if pos.position:
                result[key] = result.get(key, 0.0) + float(pos.position)
        self.positions = rows
        return result

    async def _fetch_executions(self) -> list[tuple[str, str, float, str]]:
        """(execId, key, signed shares, origin) of every execution the Gateway reports for the account."""
        fills = await asyncio.wait_for(self.session.ib.reqExecutionsAsync(),
                                       self.session.config.request_timeout)
        result = []
        for fill in fills:
            if self.session.account and fill.execution.acctNumber not in ("", self.session.account):
                continue
            sign = 1.0 if fill.execution.side in ("BOT", "BUY") else -1.0
            shares = sign * float(fill.execution.shares)
            made_by = origin(fill.execution.clientId, fill.execution.orderRef or "", self.ref_prefix,
                             self.gatewatch_ids)
            result.append((fill.execution.execId, position_key(fill.contract), shares, made_by))
        return result

    async def _advance_ledger(self) -> None:
        assert self.ledger is not None
        for exec_id, key, shares, made_by in await self._fetch_executions():
            if exec_id in self.seen_executions:
                continue
            self.seen_executions.add(exec_id)
            self.executions[made_by] += 1
            if made_by == "manual":
                logger.warning("reconciliation: {} {:+g} executed by hand (client id 0, not an API client): "
                               "not in the ledger, so it shows as drift", key, shares)
                continue
            self.ledger[key] = self.ledger.get(key, 0.0) + shares
            if not self.ledger[key]:
                del self.ledger[key]

    async def _seed(self) -> None:
        executions = await self._fetch_executions()
        self.seen_executions = {exec_id for exec_id, *_ in executions}
        self.ledger = dict(self.gateway_positions())
        logger.info("reconciliation: ledger seeded from the Gateway with {} positions", len(self.ledger))

    def _bot_positions(self) -> dict[str, float] | None:
        if not self.bot_positions_file:
            return None
        try:
            positions = read_bot_positions(self.bot_positions_file)
        except ValueError as exc:
            if str(exc) != self._bot_error:
                logger.warning("reconciliation: bot positions unusable: {}", exc)
                self._bot_error = str(exc)
            raise ProbeFailure(str(exc)) from exc
        self._bot_error = ""
        return positions

    async def _compare(self) -> dict[str, dict[str, float]]:
        await self._advance_ledger()
        gateway = self.gateway_positions()
        assert self.ledger is not None
        result = {"ledger": differences(gateway, self.ledger)}
        bot = self._bot_positions()
        if bot is not None:
            result["bot"] = differences(gateway, bot)
        return result

    async def run_once(self) -> None:
        if not self.session.connected:
            raise ProbeFailure("not connected")
        if self.ledger is None:
            await self._seed()
        found = await self._compare()
        seen_now = {(source, key) for source, diffs in found.items() for key, value in diffs.items() if value}
        confirmed = seen_now & self.pending  # differences the previous check found as well
        fresh = seen_now - self.pending
        if fresh:
            logger.debug("reconciliation: {} differ; confirming on the next check",
                         ", ".join(f"{key} ({source})" for source, key in sorted(fresh)))
        self.pending = seen_now
        drift: dict[tuple[str, str], float] = {}
        problems = []
        for source, diffs in found.items():
            drifted = {k: v for k, v in diffs.items() if (source, k) in confirmed}
            for key in diffs:
                drift[(key, source)] = drifted.get(key, 0.0)
            if drifted:
                self.discrepancies[source] += 1
                problems.append(f"{source}: " + ", ".join(f"{k} {v:+g}" for k, v in drifted.items()))
        if problems and drift != self.drift:
            logger.warning("reconciliation: positions differ from the Gateway's ({})", "; ".join(problems))
        self.drift = drift
