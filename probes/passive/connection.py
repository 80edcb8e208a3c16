"""The connection probe: is the API connection up, and what is the Gateway telling us?

Keeps the connection counters, API messages counted by code and class, data-farm status per farm,
competing sessions (10197) and IB-side connectivity loss (1100 until 1101/1102). Whether the
session is connected is read from the session itself at scrape time, so a dead Gateway shows the
instant ib_async reports the socket closed rather than at the next poll.

Message classes follow docs in ibkr-facts: *critical* means data or orders are not flowing,
*warning* needs attention, *informational* is routine (farm OK notices, order cancelled).
"""

from __future__ import annotations

import time
from collections import Counter

from loguru import logger

from probes.outcome import ProbeFailure
from probes.passive.base import PassiveContext, Schedule

CRITICAL_CODES = frozenset({326, 502, 504, 1100, 2110, 10197})
WARNING_CODES = frozenset({100, 162, 200, 201, 354, 1101, 2103, 2105, 2157, 10167, 10168})
INFORMATIONAL_CODES = frozenset({161, 202, 1102, 2104, 2106, 2107, 2108, 2158, 10148})

FARM_CODES: dict[int, tuple[str, bool]] = {
    2103: ("market", False), 2104: ("market", True), 2108: ("market", True),
    2105: ("historical", False), 2106: ("historical", True), 2107: ("historical", True),
    2157: ("secdef", False), 2158: ("secdef", True),
}
COMPETING_SESSION = 10197
CONNECTIVITY_LOST = (1100, 2110)
CONNECTIVITY_RESTORED = (1101, 1102)
COMPETING_CLEARS_AFTER = 1.0
"""Seconds after a 10197 from which a fresh quote proves the data is ours again."""


def classify(code: int) -> str:
    """informational, warning or critical, for the ``class`` label of gatewatch_api_errors_total."""
    if code in CRITICAL_CODES:
        return "critical"
    if code in INFORMATIONAL_CODES:
        return "informational"
    if code in WARNING_CODES:
        return "warning"
    if 2100 <= code < 2200:
        return "informational"  # IBKR's 21xx range is notices
    return "warning"


def farm_name(message: str) -> str:
    """The farm named in a 21xx notice: the text after the colon (or after 'demand.' for 2107/2108)."""
    if ":" in message:
        name = message.rsplit(":", 1)[1]
    elif "demand." in message:
        name = message.split("demand.", 1)[1]
    else:
        name = ""
    return name.strip() or "unknown"


class ConnectionProbe:
    """Counts the session's events; success = connected and not cut off."""

    name = "connection"

    def __init__(self, ctx: PassiveContext) -> None:
        self.session = session = ctx.session
        self.timeout = ctx.config.gateway.request_timeout
        # A state check at the heartbeat's cadence: what it judges is event-driven or made at scrape time.
        self.interval = ctx.config.probes.heartbeat_interval
        self.recorder = ctx.state.outcomes.recorder(self.name)
        self.connects = 0
        self.disconnects = 0
        self.attempts = 0
        self.server_version = 0  # as negotiated by the latest connection
        self.api_errors: Counter[tuple[str, str]] = Counter()  # (code, class)
        self.farms: dict[tuple[str, str], bool] = {}  # (farm, type) -> ok
        self.competing_since: float | None = None
        self.connectivity_lost = False
        self.connectivity_losses = 0  # 1100/2110 arriving while linked; a repeat while lost is the same loss
        self.restored_at: float | None = None  # Unix time of the latest 1101/1102 that ended a 1100
        session.on_connected.append(self._on_connected)
        session.on_disconnected.append(self._on_disconnected)
        session.on_attempt.append(self._on_attempt)
        session.on_error.append(self._on_error)

    def schedule(self) -> Schedule:
        return Schedule(self.interval, self.timeout)

    def _on_attempt(self) -> None:
        self.attempts += 1

    def _on_connected(self) -> None:
        self.connects += 1
        self.server_version = self.session.server_version()
        self._set_competing(False)
        self._set_connectivity_lost(False)

    def _on_disconnected(self) -> None:
        self.disconnects += 1
        self.recorder.record(False, 0.0, "gateway disconnected")

    def _on_error(self, _req_id: int, code: int, message: str) -> None:
        self.api_errors[(str(code), classify(code))] += 1
        if code in FARM_CODES:
            kind, ok = FARM_CODES[code]
            farm = farm_name(message)
            if self.farms.get((farm, kind)) != ok:
                logger.info("{} data farm {} {}", kind, farm, "ok" if ok else "BROKEN")
                self.farms[(farm, kind)] = ok
        elif code == COMPETING_SESSION:
            self._set_competing(True)
        elif code in CONNECTIVITY_LOST:
            self._set_connectivity_lost(True)
        elif code in CONNECTIVITY_RESTORED:
            self._set_connectivity_lost(False)
        elif classify(code) == "critical":
            logger.error("gateway error {}: {}", code, message)

    def _on_tickers(self, _tickers: object) -> None:
        """Fresh quotes after a 10197 mean the competing session has gone."""
        if self.competing_since is not None and time.time() - self.competing_since > COMPETING_CLEARS_AFTER:
            self._set_competing(False)

    def _set_competing(self, active: bool) -> None:
        """Listens to quotes only while a competing session is on: a healthy feed then costs this
        probe nothing per batch of quotes."""
        event = self.session.ib.pendingTickersEvent
        if active and self.competing_since is None:
            logger.error("competing live session: market data withheld (10197)")
            event += self._on_tickers
        elif not active and self.competing_since is not None:
            logger.info("competing session over: market data flowing again")
            event -= self._on_tickers
        self.competing_since = time.time() if active else None

    def _set_connectivity_lost(self, lost: bool) -> None:
        if lost != self.connectivity_lost:
            if lost:
                self.connectivity_losses += 1
                logger.error("gateway lost connectivity to IB servers (1100)")
            else:
                logger.info("gateway connectivity to IB servers restored")
                self.restored_at = time.time()
        self.connectivity_lost = lost

    def linked_since(self, connected_since: float | None) -> float:
        """Since when data can flow: the later of the connection and the end of the latest 1100, 0 if not now.

        QuoteStale and quotes_fresh count a quote's age from here, so neither a Gateway outage nor a
        loss of IB's servers pages before the resumed streams had their time to tick.
        """
        if not connected_since or self.connectivity_lost:
            return 0.0
        return max(connected_since, self.restored_at or 0.0)

    async def run_once(self) -> None:
        """Periodic verdict: the socket is up, IB's servers are reachable, our data is not withheld."""
        if not self.session.connected:
            raise ProbeFailure(f"not connected to {self.session.address}")
        if self.connectivity_lost:
            raise ProbeFailure("gateway reports lost connectivity to IB (1100)")
        if self.competing_since is not None:
            raise ProbeFailure("competing live session (10197)")
