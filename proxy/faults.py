"""Faults on the bot's own path: what a bot must survive, injected between it and a real Gateway.

The catalogue (one body per fault, as the simulator's control API takes them):

* ``{"fault": "disconnect", "for": "30s"}``: cut every bot connection now and refuse reconnects
  for ``for`` (none: reconnects are accepted at once);
* ``{"fault": "stall", "for": "10s"}``: hold Gateway-to-bot traffic (the Gateway is back-pressured);
* ``{"fault": "latency", "ms": 250, "for": "1m"}``: delay Gateway-to-bot traffic;
* ``{"fault": "freeze", "symbol": "SPY", "for": "30s"}``: drop that symbol's ticks to the bot;
* ``{"fault": "error", "code": 1100}``: send the bot a Gateway error message now (``text`` and
  ``req_id`` optional; codes in :data:`ERROR_TEXT`).

Timed faults expire by themselves; ``DELETE /faults`` ends them all. Scenario timelines are YAML
lists of these bodies with ``at`` (time from proxy start).
"""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path
from typing import Any

from loguru import logger

from proxy.inject import error_frame
from proxy.measure import ConnState
from proxy.observer import Observer
from proxy.relay import Connection, Relay
from simulator.faults import FaultSet, fault_duration, fault_number
from simulator.scenario import load_timeline

#: Longest a timed fault may last, and the largest added latency: a typo must not stall a bot for days.
MAX_DURATION = 6 * 3600.0
MAX_LATENCY_MS = 60_000.0
#: Gateway messages a bot should handle, with the text a Gateway sends.
ERROR_TEXT: dict[int, str] = {
    1100: "Connectivity between IB and Trader Workstation has been lost.",
    1101: "Connectivity between IB and Trader Workstation has been restored - data lost.",
    1102: "Connectivity between IB and Trader Workstation has been restored - data maintained.",
    2103: "Market data farm connection is broken:usfarm",
    2104: "Market data farm connection is OK:usfarm",
    2105: "HMDS data farm connection is broken:ushmds",
    2106: "HMDS data farm connection is OK:ushmds",
    2110: "Connectivity between Trader Workstation and server is broken. It will be restored automatically.",
    10197: "No market data during competing live session",
}
#: fault -> (parameters it takes, whether it takes ``for``)
CATALOGUE: dict[str, tuple[set[str], bool]] = {
    "disconnect": (set(), True),
    "stall": (set(), True),
    "latency": ({"ms"}, True),
    "freeze": ({"symbol"}, True),
    "error": ({"code", "text", "req_id"}, False),
}


def validate(body: Any) -> tuple[str, dict[str, Any], float | None]:
    """Check a fault body; return (name, params, duration) or raise ValueError naming the problem."""
    if not isinstance(body, dict):
        raise ValueError('a fault is a JSON object like {"fault": "stall", "for": "10s"}')
    name = body.get("fault")
    if name not in CATALOGUE:
        raise ValueError(f"unknown fault {name!r}; known: {', '.join(sorted(CATALOGUE))}")
    allowed, takes_for = CATALOGUE[name]
    extra = set(body) - allowed - {"fault", "for"}
    if extra:
        raise ValueError(f"fault {name!r} does not take {sorted(extra)}; it takes {sorted(allowed)}")
    duration: float | None = None
    if "for" in body:
        if not takes_for:
            raise ValueError(f"fault {name!r} does not take 'for'")
        duration = fault_duration(body["for"], "for")
        if not math.isfinite(duration) or not 0 < duration <= MAX_DURATION:
            raise ValueError(f"'for' must be more than 0 and at most {MAX_DURATION:g} s")
    elif name == "stall":
        raise ValueError("fault 'stall' needs 'for' (a bot path held without end is not a test)")
    params: dict[str, Any] = {}
    if name == "latency":
        params["ms"] = fault_number(body.get("ms"), "ms", 0, MAX_LATENCY_MS)
    if name == "freeze":
        symbol = body.get("symbol")
        if not isinstance(symbol, str) or not symbol.strip():
            raise ValueError("fault 'freeze' needs 'symbol' (as the bot subscribes it, e.g. SPY)")
        params["symbol"] = symbol.strip().upper()
    if name == "error":
        code = int(fault_number(body.get("code"), "code", 0, 99999))
        if code not in ERROR_TEXT:
            raise ValueError(f"'code' must be one of {sorted(ERROR_TEXT)}")
        params["code"] = code
        params["text"] = str(body.get("text") or ERROR_TEXT[code])
        params["req_id"] = int(fault_number(body.get("req_id", -1), "req_id", -1, 2**31 - 1))
    return name, params, duration


def load_scenario(path: str | Path) -> list[tuple[float, dict[str, Any]]]:
    """A YAML list of ``{at: 30s, fault: ..., ...}``; every item checked before anything runs."""
    return load_timeline(path, validate, kind="proxy scenario")


def scaled(timeline: list[tuple[float, dict[str, Any]]], scale: float) -> list[dict[str, Any]]:
    """A timeline with ``at`` and ``for`` multiplied by ``scale`` (a compressed rehearsal), as YAML items."""
    out = []
    for at, body in timeline:
        item: dict[str, Any] = {"at": f"{at * scale:.3f}s", **body}
        if "for" in body:
            item["for"] = f"{fault_duration(body['for'], 'for') * scale:.3f}s"
        out.append(item)
    return out


class ProxyFaults:
    """Active faults and their effects on the relay; the control API's target (``simulator.control``)."""

    def __init__(self, relay: Relay, observer: Observer) -> None:
        self.relay = relay
        self.observer = observer
        self.set = FaultSet()
        self.injected: dict[str, int] = dict.fromkeys(CATALOGUE, 0)
        self.started = time.time()

    @property
    def port(self) -> int:
        return self.relay.port

    # ----------------------------------------------------------- control API
    def inject(self, body: Any) -> dict[str, Any]:
        name, params, duration = validate(body)
        self.injected[name] += 1
        logger.warning("proxy fault injected on the bot's path: {} {} for {}", name, params, duration)
        if name == "error":
            for conn in list(self.relay.connections):
                if conn.ready:
                    conn.bot_writer.write(
                        error_frame(conn.server_version, params["req_id"], params["code"], params["text"])
                    )
            return {"injected": {"fault": name, **params}}
        fault = None
        if name != "disconnect" or duration is not None:
            fault = self.set.add(name, params, duration)
        if name == "disconnect":
            for conn in list(self.relay.connections):
                conn.cut()
        return {"injected": fault.to_state() if fault else {"fault": name}}

    def clear_faults(self) -> dict[str, Any]:
        cleared = self.set.state()
        self.set.active.clear()
        return {"cleared": cleared}

    def state(self) -> dict[str, Any]:
        obs = self.observer
        return {
            "port": self.relay.port,
            "upstream": f"{self.relay.upstream[0]}:{self.relay.upstream[1]}",
            "faults": self.set.state(),
            "connections": [
                {"peer": c.peer, "client_id": c.client_id, "server_version": c.server_version, "accounts": c.accounts}
                for c in list(self.relay.connections)
            ],
            "clients": sorted(obs.clients),
        }

    def active(self, name: str) -> bool:
        return self.set.get(name) is not None

    async def run_scenario(self, timeline: list[tuple[float, dict[str, Any]]]) -> None:
        for at, body in timeline:
            delay = self.started + at - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.inject(body)

    # ----------------------------------------------------------- relay effects
    def admit(self) -> bool:
        return self.set.get("disconnect") is None

    def filter_to_bot(self, conn: Connection, payloads: list[bytes]) -> list[bytes] | None:
        if not self.set.active:
            return None
        frozen = {f["symbol"] for f in self.set.state() if f["fault"] == "freeze"}
        st: ConnState | None = conn.state.get("obs")
        if not frozen or st is None:
            return None
        keep = []
        for p in payloads:
            req_id = self.observer.tick_request(conn, p)
            if req_id is not None:
                sub = st.subs.get(req_id)
                if sub is not None and sub.name.upper() in frozen:
                    continue
            keep.append(p)
        return keep

    def holding(self) -> bool:
        """True while a stall or latency fault holds the bot's stream (called for every chunk)."""
        if not self.set.active:
            return False
        return self.set.get("stall") is not None or self.set.get("latency") is not None

    async def gate(self, conn: Connection) -> None:
        """Wait out a stall; delay by the latency fault's ``ms``."""
        while self.set.get("stall") is not None and not conn.bot_writer.is_closing():
            await asyncio.sleep(0.05)
        latency = self.set.get("latency")
        if latency is not None:
            await asyncio.sleep(latency.params["ms"] / 1000.0)
