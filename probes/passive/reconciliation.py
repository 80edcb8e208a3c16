"""The reconciliation probe: do the Gateway's positions match what we can account for?

Sources compared with the Gateway (the source of truth):

* ``ledger``: positions seeded from the Gateway when the probe first runs, then moved only by
  executions. A read-only connection hears execDetails of its own client only, so the probe asks for
  the day's executions (``reqExecutions``) every run to see fills of the order probes and the bot.
  A position that changes without any execution (a trade made by hand in another session, a
  corporate action, a broker adjustment) therefore shows as drift.
* ``bot`` (optional, config probes.bot_positions_file): a JSON object the trading bot writes,
  mapping position keys to signed quantities, for example::

      {"SPY": 10, "SPY 20261127 C 600": -1}

  Keys are as in :func:`probes.passive.positions.position_key`: a stock by symbol, an option by
  ``SYMBOL YYYYMMDD RIGHT STRIKE``. Missing keys mean zero.

``gatewatch_position_drift{symbol,source}`` is Gateway minus source. A difference is only counted
after it survives a second look a moment later, so a fill racing the position update is not
reported as a discrepancy.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from loguru import logger

from exporter.metrics import Metrics
from probes.gateway import GatewaySession
from probes.passive.base import ProbeFailure, ProbeRecorder
from probes.passive.positions import position_key

RECHECK_DELAY = 1.0


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


def differences(gateway: dict[str, float], other: dict[str, float]) -> dict[str, float]:
    """Gateway minus other, for every key either side holds."""
    return {key: gateway.get(key, 0.0) - other.get(key, 0.0) for key in sorted(set(gateway) | set(other))}


class ReconciliationProbe:
    """Compares Gateway positions with the execution ledger and, optionally, the bot's file."""

    name = "reconciliation"

    def __init__(self, session: GatewaySession, metrics: Metrics, bot_positions_file: str | None) -> None:
        self.session = session
        self.metrics = metrics
        self.bot_positions_file = bot_positions_file
        self.recorder = ProbeRecorder(metrics, self.name)
        self.ledger: dict[str, float] | None = None
        self.seen_executions: set[str] = set()
        self.gateway_keys: set[tuple[str, str, str]] = set()
        self.drift_keys: set[tuple[str, str]] = set()
        self._bot_error = ""

    def gateway_positions(self) -> dict[str, float]:
        """Non-zero Gateway positions by key; also exported as gatewatch_gateway_position."""
        result: dict[str, float] = {}
        labels: set[tuple[str, str, str]] = set()
        for pos in self.session.ib.positions(self.session.account):
            key = position_key(pos.contract)
            labels.add((key, pos.contract.secType, str(pos.contract.conId)))
            self.metrics.gateway_position.labels(key, pos.contract.secType, str(pos.contract.conId)).set(
                pos.position)
            if pos.position:
                result[key] = result.get(key, 0.0) + float(pos.position)
        for gone in self.gateway_keys - labels:
            self.metrics.gateway_position.remove(*gone)
        self.gateway_keys = labels
        return result

    async def _fetch_executions(self) -> list[tuple[str, str, float]]:
        """(execId, key, signed shares) of every execution the Gateway reports for the account."""
        fills = await asyncio.wait_for(self.session.ib.reqExecutionsAsync(),
                                       self.session.config.request_timeout)
        result = []
        for fill in fills:
            if self.session.account and fill.execution.acctNumber not in ("", self.session.account):
                continue
            sign = 1.0 if fill.execution.side in ("BOT", "BUY") else -1.0
            shares = sign * float(fill.execution.shares)
            result.append((fill.execution.execId, position_key(fill.contract), shares))
        return result

    async def _advance_ledger(self) -> None:
        assert self.ledger is not None
        for exec_id, key, shares in await self._fetch_executions():
            if exec_id in self.seen_executions:
                continue
            self.seen_executions.add(exec_id)
            self.ledger[key] = self.ledger.get(key, 0.0) + shares
            if not self.ledger[key]:
                del self.ledger[key]

    async def _seed(self) -> None:
        executions = await self._fetch_executions()
        self.seen_executions = {exec_id for exec_id, _, _ in executions}
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
        if any(v for diffs in found.values() for v in diffs.values()):
            await asyncio.sleep(RECHECK_DELAY)  # let a racing fill and its position update both land
            found = await self._compare()
        keys: set[tuple[str, str]] = set()
        problems = []
        for source, diffs in found.items():
            drifted = {k: v for k, v in diffs.items() if v}
            for key, value in diffs.items():
                self.metrics.position_drift.labels(symbol=key, source=source).set(value)
                keys.add((key, source))
            if drifted:
                self.metrics.reconciliation_discrepancies.labels(source=source).inc()
                problems.append(f"{source}: " + ", ".join(f"{k} {v:+g}" for k, v in drifted.items()))
        for key, source in self.drift_keys - keys:
            self.metrics.position_drift.remove(key, source)
        self.drift_keys = keys
        if problems:
            raise ProbeFailure("positions differ from the Gateway's (" + "; ".join(problems) + ")")
