"""The connection probe: is the API connection up, and what is the Gateway telling us?

Exports the connected gauge (set the instant ib_async reports the socket closed, so a dead
Gateway shows within milliseconds rather than at the next poll), connection counters, the server
version, API messages counted by code and class, data-farm status per farm, competing sessions
(10197) and IB-side connectivity loss (1100 until 1101/1102).

Message classes follow docs in ibkr-facts: *critical* means data or orders are not flowing,
*warning* needs attention, *informational* is routine (farm OK notices, order cancelled).
"""

from __future__ import annotations

import time

from loguru import logger

from exporter.metrics import Metrics
from probes.gateway import GatewaySession
from probes.outcome import ProbeFailure

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
    """Feeds the connection metrics from the session's events; success = connected and not cut off."""

    name = "connection"

    def __init__(self, session: GatewaySession, metrics: Metrics) -> None:
        self.session = session
        self.metrics = metrics
        self.recorder = metrics.outcomes.recorder(self.name)
        self.competing_since: float | None = None
        self.connectivity_lost = False
        self.farms: dict[tuple[str, str], bool] = {}
        metrics.gateway_connected.set(0)
        metrics.gateway_connected_since.set(0)
        metrics.competing_session.set(0)
        metrics.connectivity_lost.set(0)
        session.on_connected.append(self._on_connected)
        session.on_disconnected.append(self._on_disconnected)
        session.on_attempt.append(metrics.gateway_reconnect_attempts.inc)
        session.on_error.append(self._on_error)
        session.ib.pendingTickersEvent += self._on_tickers

    def _on_connected(self) -> None:
        m = self.metrics
        m.gateway_connected.set(1)
        m.gateway_connected_since.set(self.session.connected_since or time.time())
        m.gateway_connects.inc()
        m.gateway_server_version.set(self.session.server_version())
        self._set_competing(False)
        self._set_connectivity_lost(False)

    def _on_disconnected(self) -> None:
        m = self.metrics
        m.gateway_connected.set(0)
        m.gateway_connected_since.set(0)
        m.gateway_disconnects.inc()
        self.recorder.record(False, 0.0, "gateway disconnected")

    def _on_error(self, _req_id: int, code: int, message: str) -> None:
        self.metrics.api_errors.labels(code=str(code), **{"class": classify(code)}).inc()
        if code in FARM_CODES:
            kind, ok = FARM_CODES[code]
            farm = farm_name(message)
            self.metrics.data_farm_connected.labels(farm=farm, type=kind).set(1 if ok else 0)
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
        if active and self.competing_since is None:
            logger.error("competing live session: market data withheld (10197)")
        elif not active and self.competing_since is not None:
            logger.info("competing session over: market data flowing again")
        if active:
            self.competing_since = time.time()
        else:
            self.competing_since = None
        self.metrics.competing_session.set(1 if active else 0)

    def _set_connectivity_lost(self, lost: bool) -> None:
        if lost != self.connectivity_lost:
            if lost:
                logger.error("gateway lost connectivity to IB servers (1100)")
            else:
                logger.info("gateway connectivity to IB servers restored")
        self.connectivity_lost = lost
        self.metrics.connectivity_lost.set(1 if lost else 0)

    async def run_once(self) -> None:
        """Periodic verdict: the socket is up, IB's servers are reachable, our data is not withheld."""
        if not self.session.connected:
            raise ProbeFailure(f"not connected to {self.session.address}")
        self.metrics.gateway_server_version.set(self.session.server_version())
        if self.connectivity_lost:
            raise ProbeFailure("gateway reports lost connectivity to IB (1100)")
        if self.competing_since is not None:
            raise ProbeFailure("competing live session (10197)")
