"""What must hold after a rehearsal, judged from the simulator's own books and the probe journal.

Why the simulator's books: they are the broker's truth. The exporter's gauges say what the probes
believe; a leftover order or a duplicated send is exactly the case where that belief is wrong.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FINAL_ORDER_STATES = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})


@dataclass
class LedgerCheck:
    """The after-run invariants; ``problems`` is empty when every one holds."""

    probe_orders: int = 0
    journal_orders: int = 0
    open_probe_orders: list[dict[str, Any]] = field(default_factory=list)
    probe_positions: dict[str, float] = field(default_factory=dict)
    duplicate_refs: list[str] = field(default_factory=list)
    unjournalled_refs: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        out = []
        if self.open_probe_orders:
            refs = ", ".join(str(o.get("orderRef")) for o in self.open_probe_orders)
            out.append(f"{len(self.open_probe_orders)} probe order(s) still open at the broker: {refs}")
        if self.probe_positions:
            out.append(f"probe positions still held at the broker: {self.probe_positions}")
        if self.duplicate_refs:
            out.append(f"orders sent more than once (same orderRef): {', '.join(self.duplicate_refs)}")
        if self.unjournalled_refs:
            missing = ", ".join(self.unjournalled_refs)
            out.append(f"probe orders at the broker missing from the journal: {missing}")
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "probe_orders_at_broker": self.probe_orders,
            "journal_orders": self.journal_orders,
            "open_probe_orders": self.open_probe_orders,
            "probe_positions": self.probe_positions,
            "duplicate_order_refs": self.duplicate_refs,
            "unjournalled_order_refs": self.unjournalled_refs,
            "problems": self.problems,
        }


def is_probe_ref(order_ref: Any, prefix: str) -> bool:
    return isinstance(order_ref, str) and order_ref.startswith(prefix)


def open_probe_orders(state: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """Probe orders the broker still works (what-if orders never rest, so they never count)."""
    return [o for o in state.get("orders", [])
            if is_probe_ref(o.get("orderRef"), prefix) and not o.get("whatIf")
            and o.get("status") not in FINAL_ORDER_STATES]


def probe_positions(state: dict[str, Any], prefix: str) -> dict[str, float]:
    """Net quantity per contract from the broker's executions of probe orders (zero ones dropped).

    From executions, not positions: a manual trade in the same symbol is somebody else's position
    and must not be mistaken for (or hide) a probe leftover.
    """
    net: dict[str, float] = defaultdict(float)
    for ex in state.get("executions", []):
        if not is_probe_ref(ex.get("orderRef"), prefix):
            continue
        fields = ("symbol", "secType", "expiry", "strike", "right")
        key = " ".join(str(ex.get(k)) for k in fields if ex.get(k))
        net[key] += float(ex["shares"]) * (1 if str(ex.get("side", "")).upper() in ("BOT", "BUY") else -1)
    return {k: v for k, v in net.items() if abs(v) > 1e-9}


def journal_refs(journal_path: Path) -> list[str]:
    """Every orderRef the probes journalled (empty if the journal does not exist)."""
    if not journal_path.exists():
        return []
    from probes.active.journal import JournalReader

    with JournalReader(journal_path) as journal:
        return [o.order_ref for o in journal.all_orders()]


def check_ledger(state: dict[str, Any], prefix: str, journal_path: Path) -> LedgerCheck:
    """Leftovers, duplicates and journal coverage of the probes' orders at the broker."""
    sent = [o for o in state.get("orders", []) if is_probe_ref(o.get("orderRef"), prefix)]
    real = [o for o in sent if not o.get("whatIf")]
    counts = Counter(str(o["orderRef"]) for o in real)
    refs = set(journal_refs(journal_path))
    return LedgerCheck(
        probe_orders=len(real),
        journal_orders=len(refs),
        open_probe_orders=open_probe_orders(state, prefix),
        probe_positions=probe_positions(state, prefix),
        duplicate_refs=sorted(ref for ref, n in counts.items() if n > 1),
        unjournalled_refs=sorted(ref for ref in counts if ref not in refs),
    )
