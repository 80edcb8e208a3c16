"""Fault catalogue: validation of fault bodies and the set of currently active faults.

Side effects (dropping sockets, sending 1100/1101, ...) live in the server; this module only knows
what a valid fault looks like and which ones are active at a given instant.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Any

from gatewatch.durations import parse_duration as parse_duration  # one duration grammar for all files

FARM_TEXT = {
    2103: "Market data farm connection is broken:{farm}",
    2104: "Market data farm connection is OK:{farm}",
    2105: "HMDS data farm connection is broken:{farm}",
    2106: "HMDS data farm connection is OK:{farm}",
    2107: "HMDS data farm connection is inactive but should be available upon demand.{farm}",
    2108: "Market data farm connection is inactive but should be available upon demand.{farm}",
    2157: "Sec-def data farm connection is broken:{farm}",
    2158: "Sec-def data farm connection is OK:{farm}",
}

#: fault name -> (allowed params, does it take `for`)
FAULTS: dict[str, tuple[set[str], bool]] = {
    "disconnect": (set(), True),
    "drop": (set(), False),
    "refuse": (set(), True),
    "stall": (set(), True),
    "latency": ({"ms"}, True),
    "freeze": ({"symbol"}, True),
    "drop_bid_ask": ({"symbol"}, True),
    "connectivity_lost": ({"restore"}, True),
    "farm_status": ({"code", "farm"}, False),
    "competing_session": (set(), True),
    "reject_next_order": ({"reason"}, False),
    "partial_fill_next_order": ({"fraction"}, False),
    "clock_shift": ({"ms"}, False),
    "malformed": (set(), False),
    "pacing": ({"count"}, False),
    "historical_pacing": (set(), True),
    "manual_trade": ({"symbol", "qty", "price", "report"}, False),
    "price_jump": ({"symbol", "pct"}, False),
}

#: Bounds on every number a fault takes: beyond them a value is a typo or an attack (1e999, NaN,
#: a count that would queue a million messages), refused with the field named.
MAX_LATENCY_MS = 60_000.0
MAX_CLOCK_SHIFT_MS = 400 * 86400 * 1000.0  # a year and more: enough to visit any calendar day
MAX_PACING_COUNT = 1000
MAX_TRADE_QTY = 1_000_000.0
MAX_PRICE = 1_000_000.0


def fault_duration(value: Any, name: str) -> float:
    """A fault's ``for`` or a scenario's ``at`` (gatewatch.durations), the field named on error."""
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"'{name}': {exc}") from None


@dataclass
class Fault:
    id: int
    name: str
    params: dict[str, Any]
    started: float
    until: float | None  # epoch seconds; None = instantaneous or permanent

    def to_state(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "fault": self.name,
            **self.params,
            "started": self.started,
            "until": self.until,
        }


def validate(body: Any, known_symbols: list[str]) -> tuple[str, dict[str, Any], float | None]:
    """Check a fault body; return (name, params, duration). Raises ValueError with a clear message."""
    if not isinstance(body, dict):
        raise ValueError('fault body must be a JSON object like {"fault": "disconnect", "for": "5s"}')
    name = body.get("fault")
    if name not in FAULTS:
        raise ValueError(f"unknown fault {name!r}; known: {', '.join(sorted(FAULTS))}")
    allowed, takes_for = FAULTS[name]
    extra = set(body) - allowed - {"fault", "for", "at"}
    if extra:
        raise ValueError(
            f"fault {name!r} does not take {sorted(extra)}; allowed: {sorted(allowed | {'for'})}"
        )
    if "for" in body and not takes_for:
        raise ValueError(f"fault {name!r} does not take 'for'")
    duration = fault_duration(body["for"], "for") if "for" in body else None
    params = {k: v for k, v in body.items() if k in allowed}
    if "symbol" in allowed:
        sym = str(params.get("symbol", "")).upper()
        if sym not in known_symbols:
            raise ValueError(f"fault {name!r} needs 'symbol', one of {known_symbols}")
        params["symbol"] = sym
    if name == "latency":
        params["ms"] = fault_number(params.get("ms"), "ms", minimum=0, maximum=MAX_LATENCY_MS)
    if name == "clock_shift":
        params["ms"] = fault_number(params.get("ms"), "ms", minimum=-MAX_CLOCK_SHIFT_MS, maximum=MAX_CLOCK_SHIFT_MS)
    if name == "connectivity_lost":
        restore = params.setdefault("restore", "data_maintained")
        if restore not in ("data_lost", "data_maintained"):
            raise ValueError("restore must be 'data_lost' or 'data_maintained'")
    if name == "farm_status":
        code = int(fault_number(params.get("code"), "code"))
        if code not in FARM_TEXT:
            raise ValueError(f"code must be one of {sorted(FARM_TEXT)}")
        params["code"] = code
        params.setdefault("farm", "usfarm")
    if name == "partial_fill_next_order":
        frac = fault_number(params.get("fraction", 0.5), "fraction")
        if not 0 < frac < 1:
            raise ValueError("fraction must be between 0 and 1 (exclusive)")
        params["fraction"] = frac
    if name == "reject_next_order":
        params["reason"] = str(params.get("reason") or "Simulated rejection")
    if name == "pacing":
        count = int(fault_number(params.get("count", 1), "count", minimum=1, maximum=MAX_PACING_COUNT))
        params["count"] = count
    if name == "price_jump":
        pct = fault_number(params.get("pct"), "pct", minimum=-50)
        if pct == 0 or pct > 100:
            raise ValueError("pct must be non-zero, between -50 and 100 (a gap in percent)")
        params["pct"] = pct
    if name == "manual_trade":
        qty = fault_number(params.get("qty"), "qty", minimum=-MAX_TRADE_QTY, maximum=MAX_TRADE_QTY)
        if qty == 0:
            raise ValueError("qty must be non-zero (negative sells)")
        params["qty"] = qty
        params["report"] = report = params.get("report", "executions")
        if report not in ("executions", "none"):
            raise ValueError("'report' must be 'executions' (a hand trade in TWS, as a Gateway reports it) or 'none'")
        if params.get("price") is not None:
            params["price"] = fault_number(params["price"], "price", minimum=0.01, maximum=MAX_PRICE)
    return name, params, duration


def fault_number(value: Any, name: str, minimum: float | None = None, maximum: float | None = None) -> float:
    """A fault's number parameter: finite, within the bounds given, the field named on error."""
    if value is None or isinstance(value, bool):
        raise ValueError(f"'{name}' is required and must be a number")
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"'{name}' must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"'{name}' must be a finite number, got {value!r}")
    if minimum is not None and x < minimum:
        raise ValueError(f"'{name}' must be >= {minimum}")
    if maximum is not None and x > maximum:
        raise ValueError(f"'{name}' must be <= {maximum}")
    return x


@dataclass
class FaultSet:
    """Currently active (timed) faults; expired ones disappear on read."""

    active: list[Fault] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def add(self, name: str, params: dict[str, Any], duration: float | None) -> Fault:
        now = time.time()
        f = Fault(next(self._ids), name, params, now, now + duration if duration is not None else None)
        self.active.append(f)
        return f

    def prune(self) -> list[Fault]:
        """Drop expired faults and return them (so the server can run their revert side effects)."""
        now = time.time()
        expired = [f for f in self.active if f.until is not None and f.until <= now]
        if expired:
            self.active = [f for f in self.active if f not in expired]
        return expired

    def get(self, name: str, symbol: str | None = None) -> Fault | None:
        now = time.time()
        for f in self.active:
            if f.name != name or (f.until is not None and f.until <= now):
                continue
            if symbol is not None and f.params.get("symbol") != symbol:
                continue
            return f
        return None

    def remove(self, fault: Fault) -> None:
        if fault in self.active:
            self.active.remove(fault)

    def state(self) -> list[dict[str, Any]]:
        now = time.time()
        return [f.to_state() for f in self.active if f.until is None or f.until > now]
