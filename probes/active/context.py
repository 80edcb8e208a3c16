"""What a probe needs: the connection, the guarded order helpers and the instrument."""

from __future__ import annotations

from dataclasses import dataclass

from ib_async import IB, Contract

from gatewatch.config import GatewatchConfig
from probes.active.guard import PaperGuard
from probes.active.journal import Journal
from probes.active.orders import ProbeOrders
from probes.active.pacing import PacingGovernor
from probes.state import ProbeState


@dataclass
class ProbeContext:
    """One run's shared state; probes get this and never the raw placeOrder."""

    ib: IB
    config: GatewatchConfig
    guard: PaperGuard
    orders: ProbeOrders
    journal: Journal
    governor: PacingGovernor
    instrument: Contract
    metrics: ProbeState | None = None

    def probe_net(self) -> float:
        """Our probes' net position in the instrument, from the journal's fills."""
        return self.journal.net_positions().get(self.instrument.conId, 0.0)
