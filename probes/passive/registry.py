"""Every passive probe the exporter runs: adding one is one line here (plus its module).

Each probe is built from a :class:`probes.passive.base.PassiveContext` alone and says its own
schedule, so the exporter needs no per-probe wiring. The order is the start order.
"""

from __future__ import annotations

from probes.passive.account import AccountProbe
from probes.passive.base import PassiveContext, PassiveProbe
from probes.passive.clock import ClockProbe
from probes.passive.connection import ConnectionProbe
from probes.passive.heartbeat import HeartbeatProbe
from probes.passive.historical import HistoricalProbe
from probes.passive.process import ProcessProbe
from probes.passive.quotes import QuotesProbe
from probes.passive.reconciliation import ReconciliationProbe
from probes.passive.risk import RiskProbe

PASSIVE_PROBES = (ConnectionProbe, AccountProbe, QuotesProbe, HeartbeatProbe, ClockProbe, HistoricalProbe,
                  ReconciliationProbe, RiskProbe, ProcessProbe)


def build_passive_probes(ctx: PassiveContext) -> dict[str, PassiveProbe]:
    """One instance of every registered passive probe, by name."""
    return {cls.name: cls(ctx) for cls in PASSIVE_PROBES}
