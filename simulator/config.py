"""Simulator configuration (shared by the CLI, the in-process API and the test helper)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from simulator.protobuf import MAX_SERVED, MIN_SERVED, available

ACCOUNT_ID = re.compile(r"[A-Z]{1,4}[0-9][A-Z0-9]{0,15}")
SYMBOL = re.compile(r"[A-Z][A-Z0-9.]{0,9}")  # as probes.symbols in gatewatch.config
DEFAULT_MASTER_CLIENT_ID = 901
"""gatewatch's default exporter client id (gateway.client_id in config/gatewatch.yaml)."""


class SimConfig(BaseModel):
    """Everything that shapes one simulated Gateway.

    ``port=0`` / ``control_port=0`` bind ephemeral ports (read the real ones from the running
    ``Simulator``); ``control_port=None`` disables the HTTP control API.
    """

    host: str = "127.0.0.1"
    port: int = 4002
    account: str = "DU1234567"
    seed: int = 0
    control_port: int | None = 4080
    market: Literal["open", "calendar"] = "open"
    scenario: str | None = None
    symbols: list[str] = Field(default_factory=lambda: ["SPY", "QQQ", "IWM"])
    tick_hz: float = 4.0
    starting_cash: float = 1_000_000.0
    master_client_id: int | None = Field(default=DEFAULT_MASTER_CLIENT_ID, ge=0)
    """The Gateway's "Master API client ID" (None: no master). That client hears every client's
    order events and executions and gets all executions from reqExecutions, as on a real Gateway.
    The default is gatewatch's exporter client id: the simulator comes configured as
    docs/deployment_validation_checklist.md asks a real Gateway to be."""

    max_server_version: int = MAX_SERVED
    """The highest server version to negotiate (default: the highest served). 157-178 is the classic
    text protocol ib_async and ib_insync speak (they advertise at most 178 and get it whatever this
    is); 213-226 serve clients that advertise them (IBKR's own 10.5x client) with protobuf messages
    (simulator/protobuf.py, IBKR's schemas from the ``ibapi`` package). 179-212 are never spoken:
    see ``session.negotiate``."""

    @field_validator("max_server_version")
    @classmethod
    def _served_version(cls, v: int) -> int:
        if not (157 <= v <= 178 or MIN_SERVED <= v <= MAX_SERVED):
            raise ValueError(f"must be 157-178 (text protocol) or {MIN_SERVED}-{MAX_SERVED} (protobuf), got {v}")
        if v >= MIN_SERVED and not available():
            raise ValueError(f"{v} needs IBKR's ibapi package with its protobuf schemas (ibapi-latest), not importable")
        return v

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, v: object) -> object:
        """Accept ``"SPY,QQQ"`` as well as a list, and normalise case."""
        if isinstance(v, str):
            v = [s for s in v.split(",") if s.strip()]
        if isinstance(v, list):
            out: list[str] = []
            for s in v:
                sym = str(s).strip().upper()
                if sym and sym not in out:
                    out.append(sym)
            return out
        return v

    @field_validator("symbols")
    @classmethod
    def _stock_symbols(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one stock symbol is needed, e.g. SPY,QQQ,IWM")
        bad = [s for s in v if not SYMBOL.fullmatch(s)]
        if bad:
            raise ValueError(f"not a stock symbol: {', '.join(bad)}")
        return v

    @field_validator("account")
    @classmethod
    def _account_id(cls, v: str) -> str:
        """An IB account id (DU1234567, U1234567, DF1234567): the Gateway sends it in a comma-separated
        managedAccounts list and in every account message, so blanks, commas and the like would
        corrupt what clients read."""
        v = v.strip()
        if not ACCOUNT_ID.fullmatch(v):
            raise ValueError(
                f"must be an IB account id like DU1234567 (capital letters, then digits), got {v!r}")
        return v

    @field_validator("tick_hz")
    @classmethod
    def _positive_hz(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("tick_hz must be > 0")
        return v
