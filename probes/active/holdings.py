"""What the probes hold: the journal's net position checked against the Gateway's, per contract.

Why both: the journal alone is the probes' memory, but the Gateway is the truth about the account.
A Gateway that lost the probes' share (a restart, a reset paper account, a hand trade closing it)
still reads "+1" in the journal; selling that +1 opens a short nobody asked for. The Gateway alone
cannot tell the probes' share from the trading bot's. So a risk-reducing order may only reduce what
BOTH agree the probes hold, and any disagreement is reported (never guessed around): a probe
fails, ``gatewatch_probe_position_disagreements`` rises, and ``gatewatch flatten --repair``
offers the one repair that undoes exactly what the probes caused.
"""

from __future__ import annotations

from dataclasses import dataclass

EPSILON = 1e-9


@dataclass(frozen=True)
class Holding:
    """One contract: the probes' net per the journal and the account's position per the Gateway."""

    con_id: int
    journal: float
    gateway: float

    @property
    def agrees(self) -> bool:
        """The journal is flat, or long and the Gateway shows at least as much (others may add to it).

        A journal short never agrees: the probes only ever buy to open, so a short is a sell of
        something they did not hold, which is exactly the fault this module exists to catch.
        """
        if abs(self.journal) < EPSILON:
            return True
        return self.journal > 0 and self.gateway + EPSILON >= self.journal

    @property
    def reducible(self) -> float:
        """Signed quantity a risk-reducing order may take off: the journal's, only when both agree."""
        return self.journal if self.agrees else 0.0

    @property
    def repair_order(self) -> float:
        """Signed quantity to BUY (>0) that undoes a short the probes' sells caused; else 0.

        Only a journal short the Gateway also shows is the probes' doing (the probes never go short
        on purpose): buying back the smaller of the two touches nothing the probes did not cause.
        A journal long the Gateway does not show is never "repaired" by selling: the shares that are
        there may be the trading bot's.
        """
        if self.journal < -EPSILON and self.gateway < -EPSILON:
            return min(-self.journal, -self.gateway)
        return 0.0

    @property
    def write_off(self) -> float:
        """Signed part of the journal's position the Gateway does not show (after the repair order)."""
        if self.agrees:
            return 0.0
        return self.journal + self.repair_order

    def describe(self) -> str:
        return f"conId {self.con_id}: probes' journal {self.journal:+g}, Gateway {self.gateway:+g}"


def reconcile(journal: dict[int, float], gateway: dict[int, float]) -> dict[int, Holding]:
    """Holdings for every contract the journal has a position in (others are not the probes' business)."""
    return {con_id: Holding(con_id, net, gateway.get(con_id, 0.0)) for con_id, net in journal.items()}
